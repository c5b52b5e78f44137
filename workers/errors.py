"""What can go wrong with one job, sorted by what the worker loop should do about it.

A `JobError`'s message is what lands in `ocr_error`: one line, in plain words, naming
the document's problem and never a secret. `permanent` errors go to status 4 at once
(retrying cannot help: a corrupt or encrypted PDF stays so); the others go back to
status 3 until the row's attempts are used up.
"""

from __future__ import annotations


class JobError(Exception):
    """This job failed; the message is written to `ocr_error`."""

    permanent: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__


class RetryableJobError(JobError):
    """Might succeed later: a network error, a 5xx answer, a file not uploaded yet."""


class PermanentJobError(JobError):
    """Will fail the same way every time: the row goes to status 4 with no retry."""

    permanent = True


class DocumentError(PermanentJobError):
    """The document itself is unusable: empty, not a PDF, corrupt, encrypted, over a cap."""


class DocumentMissing(RetryableJobError):
    """The document is not (yet) where `supabase_path` says."""


class GeminiJobError(RetryableJobError):
    """Gemini could not give a usable answer after the client's own retries."""


class GeminiBlocked(PermanentJobError):
    """Gemini refused the content (safety or policy block): asking again gives the same."""


class ServiceUnavailable(Exception):
    """Not the document's fault and not one job's to fix: the service itself refuses us
    (e.g. Gemini refuses the API key). The job is given back untouched (no attempt
    counted) and the worker pauses, so a wrong key never fails the queue."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
