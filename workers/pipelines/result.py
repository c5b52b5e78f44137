"""What a pipeline hands back to the worker loop."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PipelineResult:
    file_content: str
    boosted_file_content: str | None = None
    gemini_calls: int = 0
    input_tokens: int = 0
