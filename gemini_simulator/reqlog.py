"""Every request the simulator answered, in memory and optionally appended as JSONL."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True, slots=True)
class RequestRecord:
    time: float
    """Unix seconds at arrival."""
    method: str
    path: str
    endpoint: str
    """generateContent, countTokens, files.create, files.upload, files.get, files.list,
    files.delete, or unknown."""
    model: str | None
    status: int
    """HTTP status sent; 499 when the client went away first (a hang it gave up on)."""
    input_tokens: int | None = None
    """The simulator's own count (generateContent, countTokens)."""
    output_tokens: int | None = None
    """Of the text sent (the cut text when cut)."""
    thinking_tokens: int = 0
    """Thoughts that preceded the answer (billed as output; within the output cap)."""
    finish_reason: str | None = None
    """generateContent 200 answers: STOP, or MAX_TOKENS when cut at the output cap."""
    continued: bool = False
    """The request was a continuation (it carried a `--- DÉJÀ TRANSCRIT ---` part)."""
    fault: str | None = None
    """5xx, hang, malformed, safety, bad_json."""
    quota: str | None = None
    """On a 429: "requests", "tokens" or "requests+tokens"."""
    retry_delay: str | None = None
    """On a 429: RetryInfo.retryDelay as sent."""
    delay_ms: float = 0.0
    """Latency (or hang) the simulator injected."""
    latency_ms: float = 0.0
    """Arrival to answer, as the simulator measured it."""
    source: str | None = None
    """What the answer was derived from: pdf, image, text, mixed, none."""
    pages: list[str] | None = None
    """Corpus pages recognised in images ("file.pdf#3"; "?" for an unknown image)."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class RequestLog:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._records: list[RequestRecord] = []
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    def append(self, record: RequestRecord) -> None:
        self._records.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record.as_dict(), ensure_ascii=False) + "\n")
            self._file.flush()

    def records(self) -> list[RequestRecord]:
        return list(self._records)

    def clear(self) -> None:
        """Forget the in-memory records (the JSONL file keeps its history)."""
        self._records.clear()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
