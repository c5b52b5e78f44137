"""One simulator's state: settings, quota, fault plan, latency, request log, files, corpus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from gemini_simulator.config import SimulatorConfig
from gemini_simulator.corpus import Corpus
from gemini_simulator.faults import FaultPlan
from gemini_simulator.filestore import FileStore
from gemini_simulator.latency import LatencyModel
from gemini_simulator.media import PymupdfInspector, pdf_pages
from gemini_simulator.quota import SlidingWindowQuota
from gemini_simulator.reqlog import RequestLog

T = TypeVar("T")


class CorpusReader:
    """`answers.ContentReader` over pymupdf and the corpus (media thread only)."""

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus

    def pdf_pages(self, data: bytes) -> list[str]:
        return pdf_pages(data)

    def recognise(self, data: bytes) -> tuple[str, str] | None:
        match = self.corpus.recognise(data)
        return None if match is None else (match.page.label, match.page.text)


class SimulatorState:
    def __init__(
        self, config: SimulatorConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.quota = SlidingWindowQuota(config.rpm, config.tpm, config.window_seconds, clock)
        self.faults = FaultPlan(config.fault_rates, config.seed)
        self.latency = LatencyModel(
            config.latency_ms, config.latency_per_1k_tokens_ms, config.latency_sigma, config.seed
        )
        self.log = RequestLog(config.log_path)
        self.files = FileStore()
        self.corpus = Corpus()
        self.reader = CorpusReader(self.corpus)
        self.inspector = PymupdfInspector()
        self.stopping = asyncio.Event()
        # pymupdf is not thread-safe: all of its work runs on this one thread.
        self._media = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gemini-sim-media")

    async def in_media_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._media, fn, *args)

    async def add_corpus(self, paths: Iterable[Path]) -> int:
        return await self.in_media_thread(self.corpus.add, list(paths))

    def configure(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """Apply runtime changes (ConfigError if any is invalid: then nothing changes)."""
        new = self.config.updated(changes)
        self.quota.configure(new.rpm, new.tpm, new.window_seconds)
        self.faults.rates = new.fault_rates
        self.latency.base_ms = new.latency_ms
        self.latency.per_1k_tokens_ms = new.latency_per_1k_tokens_ms
        self.latency.sigma = new.latency_sigma
        if new.seed != self.config.seed:
            self.faults.reseed(new.seed)
            self.latency.reseed(new.seed)
        self.config = new
        return new

    def reset(self) -> None:
        """Clear the log, the quota windows and the files; restart the seeded sequences."""
        self.log.clear()
        self.quota.reset()
        self.files.clear()
        self.faults.reseed(self.config.seed)
        self.latency.reseed(self.config.seed)

    async def close(self) -> None:
        self.stopping.set()
        await self.in_media_thread(self.corpus.close)
        self._media.shutdown(wait=True)
        self.log.close()
