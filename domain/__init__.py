"""The domain's plain types, below every layer: what a document is (`DocumentSource`,
`Status`, `JobId`) and what a pool decided (`AllocationRecord`). Nothing here imports
another package of the project, a driver or an SDK."""

from domain.allocation import AllocationRecord
from domain.documents import DocumentSource, JobId, Status

__all__ = ["AllocationRecord", "DocumentSource", "JobId", "Status"]
