"""Everything a pool's workers share, built from the settings and closed together:
Redis, the Gemini limiter and client, the queue stores with their document storage,
one HTTP session for downloads, the capacity ledger, the pipelines' context. Each part's
configuration comes from `pool.wiring.configs`; this module only opens and closes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import anyio
from redis.asyncio import Redis
from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    ResponseError,
)

from capacity import CapacityLedger
from capacity.errors import redact
from domain import DocumentSource
from pool.wiring.configs import (
    MB,
    gemini_retry,
    host_config,
    limiter_config,
    models,
    output_room,
    pdf_limits,
    price_table,
    store_address,
    thinking_budgets,
    worker_config,
)
from pool.wiring.redis_client import new_redis
from pool.wiring.settings import QueueEnvironment, Settings, SettingsError, redact_url
from ratelimit import GeminiLimiter
from store import open_store
from workers.documents import StorageTarget
from workers.gemini import GeminiClient
from workers.pipelines.context import PipelineContext
from workers.worker import JobReport, QueueTarget, Worker, WorkerConfig

NO_KEY = "unset"
"""Sent as the API key when GEMINI_BASE_URL points at a proxy or simulator and no
GEMINI_API_KEY is set (the SDK insists on one)."""


class StartupError(RuntimeError):
    """The pool cannot start: one line saying what is wrong (no secret in it)."""


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

    async def check_redis(self) -> None:
        """Ping Redis once; what is wrong (unreachable, a password missing or refused) as a
        `StartupError` of one line, the URL shown without its secret."""
        url = self.settings.redis_url.get_secret_value()
        shown = redact_url(url)
        try:
            with anyio.fail_after(15):
                await self.redis.ping()
        except (AuthenticationError, AuthenticationWrongNumberOfArgsError, ResponseError) as exc:
            if not isinstance(exc, ResponseError) or "NOAUTH" in str(exc):
                if urlsplit(url).password is None:
                    raise StartupError(
                        f"Redis {shown} requires a password: put it in REDIS_URL "
                        "(redis://:PASSWORD@host:port/db)"
                    ) from None
                raise StartupError(
                    f"Redis {shown} refused the credentials in REDIS_URL: {redact(str(exc))}"
                ) from None
            raise StartupError(f"Redis {shown}: {redact(str(exc))}") from None
        except Exception as exc:
            raise StartupError(
                f"Redis is not reachable at {shown}: {type(exc).__name__}: {redact(str(exc))}"
            ) from None

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


@asynccontextmanager
async def open_runtime(settings: Settings, *, capacity: bool = True) -> AsyncIterator[Runtime]:
    """Open everything for a pool of workers; raises `SettingsError` / `StoreError` /
    Redis errors with a clear message when something is missing or unreachable."""
    api_key = gemini_api_key(settings)
    envs = settings.require_queue()
    async with AsyncExitStack() as stack:
        redis = new_redis(settings)
        stack.push_async_callback(redis.aclose)
        limiter = GeminiLimiter(redis, limiter_config(settings), prefix=settings.ocr_redis_prefix)
        gemini = GeminiClient(
            limiter,
            api_key=api_key,
            base_url=settings.gemini_base_url,
            timeout_seconds=settings.gemini_timeout_seconds,
            retry=gemini_retry(settings),
        )
        stack.push_async_callback(gemini.aclose)
        targets: list[QueueTarget] = []
        for env in envs:
            store = await open_store(store_address(env, settings))
            stack.push_async_callback(store.close)
            targets.append(QueueTarget(store, storage_target(env)))
        http = aiohttp.ClientSession()
        stack.push_async_callback(http.close)
        ledger = None
        if capacity:
            ledger = CapacityLedger.for_host(redis, host_config(settings))
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
                models=models(settings),
                pdf_limits=pdf_limits(settings),
                output=output_room(settings),
                thinking=thinking_budgets(settings),
                prices=price_table(settings),
                page_concurrency=settings.ocr_index_page_concurrency,
                inline_max_bytes=round(settings.gemini_inline_max_mb * MB),
            ),
            worker_config=worker_config(settings),
        )
