"""Helpers shared by the pool benchmarks: a backlog of sample PDFs, the Gemini simulator
in a process of its own, settings for a benchmark pool, clean-up of Redis keys.

The simulator runs as a separate process (`python -m gemini_simulator`) so that its
work (parsing PDFs, decoding page images, building answers) does not share the pool's
event loop: Gemini is remote in production.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymupdf
from redis.asyncio import Redis

from domain import DocumentSource
from gemini_simulator import SimulatorConfig
from gemini_simulator.server import admin
from pool.cli.samples import acte_paragraphs, index_page_lines, sample_index_page, write_pdf
from pool.wiring.runtime import Runtime
from pool.wiring.settings import Settings, load_settings

REDIS_URL = "redis://127.0.0.1:6379/0"
MAX_ATTEMPTS = 3
MODELS = {
    "gemini_model_index": "sim-index",
    "gemini_model_acte_extract": "sim-acte-extract",
    "gemini_model_acte_boost": "sim-acte-boost",
}


@dataclass(frozen=True)
class Backlog:
    """PDFs on disk: `index` and `acte` documents, and `corpus`, the one PDF holding every
    distinct index page (what the simulator recognises page images against)."""

    index: list[Path]
    acte: list[Path]
    corpus: Path

    @property
    def jobs(self) -> int:
        return len(self.index) + len(self.acte)


def write_backlog(
    directory: Path,
    n_index: int,
    n_acte: int,
    *,
    index_pages: int,
    acte_pages: int = 2,
    distinct_pages: int = 24,
    seed: int = 0,
) -> Backlog:
    """`n_index` index documents of `index_pages` pages, each page drawn from a set of
    `distinct_pages` pages (so the simulator recognises a page image once and answers
    it from its cache afterwards: a corpus of thousands of pages would make its page
    lookup, not the pool, the bottleneck), and `n_acte` acte documents of `acte_pages`
    pages of deed text, all different. Paths are absolute (read locally by workers)."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pages = [
        index_page_lines(sample_index_page(seed * 100_000 + p, 30)) for p in range(distinct_pages)
    ]
    corpus = directory / "index-pages.pdf"
    write_pdf(corpus, pages)
    index_files: list[Path] = []
    source = pymupdf.open(corpus)
    try:
        for n in range(n_index):
            path = directory / f"index-{n:04d}.pdf"
            # Pages copied from the corpus file render to the very same pixels.
            doc = pymupdf.open()
            for _ in range(index_pages):
                page = rng.randrange(distinct_pages)
                doc.insert_pdf(source, from_page=page, to_page=page)
            doc.save(path)
            doc.close()
            index_files.append(path)
    finally:
        source.close()
    acte_files: list[Path] = []
    for n in range(n_acte):
        path = directory / f"acte-{n:04d}.pdf"
        base = seed * 100_000 + 50_000 + n * 10
        write_pdf(path, [acte_paragraphs(base + p, 10) for p in range(acte_pages)])
        acte_files.append(path)
    return Backlog(index_files, acte_files, corpus)


def simulator_args(config: SimulatorConfig) -> list[str]:
    """Command-line options of `python -m gemini_simulator` equal to `config`."""
    args = [
        "--host",
        config.host,
        "--port",
        str(config.port),
        "--rpm",
        str(config.rpm),
        "--tpm",
        str(config.tpm),
        "--latency-ms",
        str(config.latency_ms),
        "--latency-per-1k-tokens-ms",
        str(config.latency_per_1k_tokens_ms),
        "--latency-sigma",
        str(config.latency_sigma),
        "--seed",
        str(config.seed),
    ]
    for path in config.corpus:
        args += ["--corpus", str(path)]
    return args


@contextmanager
def simulator_process(config: SimulatorConfig) -> Iterator[str]:
    """Run the simulator with `config` in a child process; yields its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gemini_simulator", *simulator_args(config)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        prefix = "gemini-simulator listening on "
        if not line.startswith(prefix):
            raise SystemExit(f"the simulator did not start (it said {line!r})")
        yield line.removeprefix(prefix)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def simulator_reset(url: str) -> None:
    """Clear the simulator's log and quota windows and restart its seeded draws."""
    await admin(url, "POST", "/_sim/reset")


async def simulator_calls(url: str) -> tuple[int, int]:
    """generateContent requests answered 200 since the last reset, and how many page
    images among them the simulator did not recognise."""
    records = await admin(url, "GET", "/_sim/log")
    answered = [r for r in records if r["endpoint"] == "generateContent" and r["status"] == 200]
    unknown = sum(1 for r in answered for page in r.get("pages") or () if page == "?")
    return len(answered), unknown


def pool_values(database_url: str, prefix: str, sim_url: str, local_root: Path) -> dict[str, Any]:
    """Settings of a benchmark pool (field name → value): documents read under
    `local_root`, the simulator's models, limits far above what it asks, the machine's
    capacity not binding, fast idle polls."""
    return {
        "ocr_local_roots": str(local_root),
        "database_url": database_url,
        "redis_url": REDIS_URL,
        "ocr_redis_prefix": prefix,
        "ocr_server_id": "bench-" + prefix.strip(":").replace(":", "-"),
        "gemini_base_url": sim_url,
        "gemini_api_key": "sim-key",
        **MODELS,
        "gemini_rpm_limit": 1_000_000,
        "gemini_tpm_limit": 1_000_000_000,
        "gemini_retry_base_seconds": 0.05,
        "ocr_render_dpi": 100,
        "ocr_idle_poll_seconds": 0.2,
        "ocr_max_attempts": MAX_ATTEMPTS,
        "server_max_cpu": 256,
        "server_max_ram": 256,
        "server_reserve_cpu_percent": 0,
        "server_reserve_ram_percent": 0,
    }


def bench_settings(
    database_url: str, prefix: str, sim_url: str, local_root: Path, **extra: Any
) -> Settings:
    """`pool_values` with `extra` over them; no `.env` file is read."""
    values = pool_values(database_url, prefix, sim_url, local_root)
    return load_settings(_env_file=None, **{**values, **extra})


def environment(values: dict[str, Any]) -> dict[str, str]:
    """The same settings as environment variables (for `ocr-pool start`)."""
    return {name.upper(): str(value) for name, value in values.items()}


async def enqueue(runtime: Runtime, source: DocumentSource, paths: Sequence[Path]) -> None:
    store = runtime.targets[0].store
    await store.enqueue(source, [str(p) for p in paths], [0] * len(paths), MAX_ATTEMPTS)


async def drop_prefix(prefix: str, redis_url: str = REDIS_URL) -> int:
    """Delete every Redis key under `prefix` (a benchmark's own); returns how many."""
    if not prefix:
        raise ValueError("refusing to delete keys without a prefix")
    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 500):
            await redis.delete(*keys[start : start + 500])
        return len(keys)
    finally:
        await redis.aclose()
