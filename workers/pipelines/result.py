"""What a pipeline hands back to the worker loop."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class PipelineResult:
    file_content: str
    boosted_file_content: str | None = None
    gemini_calls: int = 0
    input_tokens: int = 0

    def without_nul(self) -> PipelineResult:
        """Postgres text cannot hold NUL; a model may emit one."""
        boosted = self.boosted_file_content
        return replace(
            self,
            file_content=self.file_content.replace("\x00", ""),
            boosted_file_content=None if boosted is None else boosted.replace("\x00", ""),
        )
