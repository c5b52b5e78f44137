"""What a pipeline hands back to the worker loop."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from workers.gemini import Answer, AnswerCut
from workers.gemini.client import TokenCounts
from workers.pipelines.schema import ModelUsage, Usage
from workers.pricing import PriceTable


@dataclass(frozen=True, slots=True)
class PipelineResult:
    file_content: str
    """The raw transcription, text with `--- Page N ---` lines (the production format)."""
    boosted_file_content: str | None = None
    """The corrected, normalised text, same layout."""
    file_content_json: dict[str, Any] | None = None
    """The structured result (`IndexDocument` / `ActeDocument` as JSON)."""
    usage: Usage = field(default_factory=Usage)
    """What the document cost (zero for a cached result)."""

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
    """What a document's Gemini requests cost, answers and cut answers alike, per model."""

    prices: PriceTable = field(default_factory=PriceTable.from_setting)
    cut_answers: int = 0
    models: dict[str, TokenCounts] = field(default_factory=dict)

    def _add(self, model: str, calls: int, input_tokens: int, output: int, thinking: int) -> None:
        counts = self.models.setdefault(model, TokenCounts())
        counts.requests += calls
        counts.input_tokens += input_tokens
        counts.output_tokens += output
        counts.thinking_tokens += thinking

    def answered(self, answer: Answer) -> None:
        self._add(
            answer.model,
            answer.calls,
            answer.input_tokens,
            answer.output_tokens,
            answer.thinking_tokens,
        )

    def cut(self, cut: AnswerCut) -> None:
        self._add(cut.model, cut.calls, cut.input_tokens, cut.output_tokens, cut.thinking_tokens)
        self.cut_answers += 1

    @property
    def calls(self) -> int:
        return sum(c.requests for c in self.models.values())

    def usage(self) -> Usage:
        by_model = {
            model: ModelUsage(
                gemini_calls=c.requests,
                input_tokens=c.input_tokens,
                output_tokens=c.output_tokens,
                thinking_tokens=c.thinking_tokens,
                cost_usd=self.prices.cost(
                    model, c.input_tokens, c.output_tokens, c.thinking_tokens
                ),
            )
            for model, c in sorted(self.models.items())
        }
        costs = [m.cost_usd for m in by_model.values()]
        return Usage(
            gemini_calls=sum(m.gemini_calls for m in by_model.values()),
            input_tokens=sum(m.input_tokens for m in by_model.values()),
            output_tokens=sum(m.output_tokens for m in by_model.values()),
            thinking_tokens=sum(m.thinking_tokens for m in by_model.values()),
            cut_answers=self.cut_answers,
            cost_usd=None if None in costs else round(sum(c for c in costs if c), 8),
            by_model=by_model,
        )
