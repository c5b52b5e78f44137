"""Everything a pool's workers share, built from the settings and closed together:
Redis, the Gemini limiter and client, the queue stores with their document storage,
one HTTP session for downloads, the capacity ledger, the pipelines' context."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import aiohttp
from redis.asyncio import Redis

from capacity import CapacityLedger, parse_costs
from domain import DocumentSource
from pool.wiring.queues import open_environment
from pool.wiring.settings import QueueEnvironment, Settings, SettingsError
from ratelimit import GeminiLimiter
from workers.documents import FetchConfig, StorageTarget
from workers.gemini import GeminiClient, RetryPolicy
from workers.job_policy import JobRetryPolicy
from workers.pdf import PdfLimits
from workers.pipelines.context import Models, PipelineContext
from workers.worker import JobReport, QueueTarget, Worker, WorkerConfig

MB = 1024 * 1024
NO_KEY = "unset"
"""Sent as the API key when GEMINI_BASE_URL points at a proxy or simulator and no
GEMINI_API_KEY is set (the SDK insists on one)."""


@dataclass(slots=True)
class Runtime:
    settings: Settings
    redis: Redis
    limiter: GeminiLimiter
    gemini: GeminiClient
    targets: list[QueueTarget]
    http: aiohttp.ClientSession
    capacity: CapacityLedger | None
    pipelines: PipelineContext
    worker_config: WorkerConfig

    def worker(
        self,
        name: str,
        mode: DocumentSource,
        on_report: Callable[[JobReport], None] | None = None,
    ) -> Worker:
        return Worker(
            name,
            mode,
            self.targets,
            self.pipelines,
            self.worker_config,
            capacity=self.capacity,
            http=self.http,
            on_report=on_report,
        )


def gemini_api_key(settings: Settings) -> str:
    if settings.gemini_api_key is not None:
        return settings.gemini_api_key.get_secret_value()
    if settings.gemini_base_url:
        return NO_KEY
    raise SettingsError(
        "GEMINI_API_KEY: missing (or set GEMINI_BASE_URL to a proxy or the simulator)"
    )


def storage_target(env: QueueEnvironment) -> StorageTarget | None:
    if env.supabase_url and env.supabase_service_key is not None:
        return StorageTarget(env.supabase_url, env.supabase_service_key.get_secret_value())
    return None


def worker_config(settings: Settings) -> WorkerConfig:
    return WorkerConfig(
        fetch=FetchConfig(
            max_bytes=round(settings.ocr_max_document_mb * MB),
            local_roots=settings.local_roots,
            buckets={
                DocumentSource.INDEX.value: settings.ocr_storage_bucket_index,
                DocumentSource.ACTE.value: settings.ocr_storage_bucket_acte,
            },
            timeout_seconds=settings.ocr_download_timeout_seconds,
        ),
        lease_seconds=settings.ocr_lease_seconds,
        heartbeat_seconds=settings.ocr_heartbeat_seconds,
        idle_poll_seconds=settings.ocr_idle_poll_seconds,
        retry=JobRetryPolicy(settings.ocr_retry_base_seconds, settings.ocr_retry_max_seconds),
        use_cache=settings.ocr_result_cache,
        steal=settings.ocr_work_stealing,
    )


def pdf_limits(settings: Settings) -> PdfLimits:
    return PdfLimits(
        max_pages=settings.ocr_max_pages,
        dpi=settings.ocr_render_dpi,
        max_page_pixels=round(settings.ocr_max_page_megapixels * 1_000_000),
    )


@asynccontextmanager
async def open_runtime(settings: Settings, *, capacity: bool = True) -> AsyncIterator[Runtime]:
    """Open everything for a pool of workers; raises `SettingsError` / `StoreError` /
    Redis errors with a clear message when something is missing or unreachable."""
    api_key = gemini_api_key(settings)
    envs = settings.require_queue()
    async with AsyncExitStack() as stack:
        redis = Redis.from_url(
            settings.redis_url.get_secret_value(), socket_connect_timeout=5, socket_timeout=10
        )
        stack.push_async_callback(redis.aclose)
        limiter = GeminiLimiter(redis, settings.limiter_config(), prefix=settings.ocr_redis_prefix)
        gemini = GeminiClient(
            limiter,
            api_key=api_key,
            base_url=settings.gemini_base_url,
            timeout_seconds=settings.gemini_timeout_seconds,
            retry=RetryPolicy(
                max_attempts=settings.gemini_max_attempts,
                base_delay=settings.gemini_retry_base_seconds,
                max_delay=max(30.0, settings.gemini_retry_base_seconds),
            ),
        )
        stack.push_async_callback(gemini.aclose)
        targets: list[QueueTarget] = []
        for env in envs:
            store = await open_environment(env, settings)
            stack.push_async_callback(store.close)
            targets.append(QueueTarget(store, storage_target(env)))
        http = aiohttp.ClientSession()
        stack.push_async_callback(http.close)
        ledger = None
        if capacity:
            ledger = CapacityLedger.for_host(
                redis,
                settings.ocr_server_id,
                max_cpu=settings.server_max_cpu,
                max_ram=settings.server_max_ram,
                reserve_cpu_percent=settings.server_reserve_cpu_percent,
                reserve_ram_percent=settings.server_reserve_ram_percent,
                prefix=settings.ocr_redis_prefix,
                lease_seconds=settings.ocr_capacity_lease_seconds,
                costs=parse_costs(settings.ocr_capacity_costs),
            )
        yield Runtime(
            settings=settings,
            redis=redis,
            limiter=limiter,
            gemini=gemini,
            targets=targets,
            http=http,
            capacity=ledger,
            pipelines=PipelineContext(
                gemini=gemini,
                models=Models(
                    index=settings.gemini_model_index,
                    acte_extract=settings.gemini_model_acte_extract,
                    acte_boost=settings.gemini_model_acte_boost,
                ),
                pdf_limits=pdf_limits(settings),
                output=settings.output_room(),
                thinking=settings.thinking_budgets(),
                prices=settings.price_table(),
                page_concurrency=settings.ocr_index_page_concurrency,
                inline_max_bytes=round(settings.gemini_inline_max_mb * MB),
            ),
            worker_config=worker_config(settings),
        )
