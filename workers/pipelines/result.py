"""What a pipeline hands back to the worker loop."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from workers.gemini import Answer, AnswerCut
from workers.pipelines.schema import Usage


@dataclass(frozen=True, slots=True)
class PipelineResult:
    file_content: str
    """The raw transcription, text with `--- Page N ---` lines (the production format)."""
    boosted_file_content: str | None = None
    """The corrected, normalised text, same layout."""
    file_content_json: dict[str, Any] | None = None
    """The structured result (`IndexDocument` / `ActeDocument` as JSON)."""
    gemini_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cut_answers: int = 0

    def without_nul(self) -> PipelineResult:
        """Postgres text (and jsonb) cannot hold NUL; a model may emit one."""
        boosted = self.boosted_file_content
        return replace(
            self,
            file_content=self.file_content.replace("\x00", ""),
            boosted_file_content=None if boosted is None else boosted.replace("\x00", ""),
            file_content_json=_strip_nul(self.file_content_json),
        )


def _strip_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


@dataclass(slots=True)
class Tally:
    """What a document's Gemini requests cost, answers and cut answers alike."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cut_answers: int = 0

    def answered(self, answer: Answer) -> None:
        self.calls += answer.calls
        self.input_tokens += answer.input_tokens
        self.output_tokens += answer.output_tokens

    def cut(self, cut: AnswerCut) -> None:
        self.calls += cut.calls
        self.input_tokens += cut.input_tokens
        self.output_tokens += cut.output_tokens
        self.cut_answers += 1

    def usage(self) -> Usage:
        return Usage(
            gemini_calls=self.calls,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cut_answers=self.cut_answers,
        )
