"""What both pipelines need, built once per pool and shared by its workers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from workers.errors import JobError, ServiceUnavailable
from workers.gemini import GeminiClient
from workers.pdf import PdfLimits
from workers.pipelines.output import OutputRoom, ThinkingBudgets
from workers.pricing import PriceTable


@dataclass(frozen=True, slots=True)
class Models:
    index: str = "gemini-2.5-flash"
    acte_extract: str = "gemini-2.5-flash"
    acte_boost: str = "gemini-2.5-flash"


@dataclass(frozen=True, slots=True)
class PipelineContext:
    gemini: GeminiClient
    models: Models
    pdf_limits: PdfLimits
    output: OutputRoom = field(default_factory=OutputRoom)
    thinking: ThinkingBudgets = field(default_factory=ThinkingBudgets)
    prices: PriceTable = field(default_factory=PriceTable.from_setting)
    page_concurrency: int = 4
    """Pages of one index document in flight at once (rendering + Gemini call)."""
    inline_max_bytes: int = 14 * 1024 * 1024
    """An acte PDF up to this size is sent inline (base64 grows it by a third; Gemini
    takes at most 20 MB inline per request); a larger one goes through the Files API."""


@contextmanager
def first_job_error() -> Iterator[None]:
    """Unwrap a task group's failure: the first `JobError` (or `ServiceUnavailable`) of
    the group, raised alone (siblings were cancelled because of it), so callers see the
    document's problem."""
    try:
        yield
    except BaseExceptionGroup as group:
        matched, _ = group.split((ServiceUnavailable, JobError))
        if matched is not None:
            first: BaseException = matched
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        raise
