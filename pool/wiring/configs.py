"""Settings → the typed configuration each part takes: the one place where a raw setting
becomes a value a part understands. Nothing here opens a connection (`runtime` does)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from capacity import HostConfig, parse_costs
from domain import DocumentSource
from pool.allocation import AllocationRules
from pool.wiring.settings import QueueEnvironment, Settings
from ratelimit import LimiterConfig
from ratelimit.config import Quota, parse_model_quotas
from store import StoreAddress
from workers.documents import FetchConfig
from workers.gemini import RetryPolicy
from workers.job_policy import JobRetryPolicy
from workers.pdf import PdfLimits
from workers.pipelines.context import Models
from workers.pipelines.output import OutputRoom, ThinkingBudgets
from workers.pricing import PriceTable
from workers.worker import WorkerConfig

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """What the pool manager itself needs (the workers, stores and clients it runs
    come ready in the `Runtime`)."""

    server_id: str
    rules: AllocationRules
    redis_prefix: str
    seed_seconds: tuple[float, float]
    """(index, acte): a document's expected service time until one is measured"""
    rebalance_seconds: float
    status_seconds: float
    lease_seconds: float
    shutdown_grace_seconds: float
    rpd_flush_seconds: float
    quota_timezone: str
    metrics_host: str
    metrics_port: int | None
    local_roots: tuple[Path, ...]


def pool_config(settings: Settings) -> PoolConfig:
    return PoolConfig(
        server_id=settings.ocr_server_id,
        rules=AllocationRules(
            pool_size=settings.ocr_worker_pool_size,
            min_index=settings.ocr_min_index_workers,
            min_acte=settings.ocr_min_acte_workers,
            hysteresis=settings.ocr_rebalance_hysteresis,
        ),
        redis_prefix=settings.ocr_redis_prefix,
        seed_seconds=(settings.ocr_index_seconds_seed, settings.ocr_acte_seconds_seed),
        rebalance_seconds=settings.ocr_rebalance_interval_ms / 1000,
        status_seconds=settings.ocr_status_interval_ms / 1000,
        lease_seconds=settings.ocr_lease_seconds,
        shutdown_grace_seconds=settings.ocr_shutdown_grace_seconds,
        rpd_flush_seconds=settings.gemini_rpd_flush_seconds,
        quota_timezone=settings.gemini_quota_timezone,
        metrics_host=settings.ocr_metrics_host,
        metrics_port=settings.ocr_metrics_port,
        local_roots=settings.local_roots,
    )


def limiter_config(settings: Settings) -> LimiterConfig:
    """What the shared Gemini limiter enforces, from the GEMINI_* settings."""
    return LimiterConfig(
        Quota(settings.gemini_rpm_limit, settings.gemini_tpm_limit, settings.gemini_rpd_limit),
        parse_model_quotas(settings.gemini_model_limits),
        window_seconds=settings.gemini_window_seconds,
        day_timezone=settings.gemini_quota_timezone,
        wire_margin_seconds=settings.gemini_wire_margin_seconds,
    )


def gemini_retry(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.gemini_max_attempts,
        base_delay=settings.gemini_retry_base_seconds,
        max_delay=max(30.0, settings.gemini_retry_base_seconds),
    )


def models(settings: Settings) -> Models:
    return Models(
        index=settings.gemini_model_index,
        acte_extract=settings.gemini_model_acte_extract,
        acte_boost=settings.gemini_model_acte_boost,
    )


def output_room(settings: Settings) -> OutputRoom:
    """`max_output_tokens` per step: the step's setting, else GEMINI_MAX_OUTPUT_TOKENS,
    else the step's default."""
    default = OutputRoom()

    def pick(step: str) -> int:
        own: int | None = getattr(settings, f"gemini_max_output_tokens_{step}")
        if own is not None:
            return own
        if settings.gemini_max_output_tokens is not None:
            return settings.gemini_max_output_tokens
        value: int = getattr(default, step)
        return value

    return OutputRoom(
        index=pick("index"), acte_extract=pick("acte_extract"), acte_boost=pick("acte_boost")
    )


def thinking_budgets(settings: Settings) -> ThinkingBudgets:
    """Per step: the step's setting, else GEMINI_THINKING_BUDGET, else None (the least
    the model allows)."""

    def pick(step: str) -> int | None:
        own: int | None = getattr(settings, f"gemini_thinking_budget_{step}")
        return own if own is not None else settings.gemini_thinking_budget

    return ThinkingBudgets(
        index=pick("index"), acte_extract=pick("acte_extract"), acte_boost=pick("acte_boost")
    )


def price_table(settings: Settings) -> PriceTable:
    return PriceTable.from_setting(settings.gemini_prices)


def pdf_limits(settings: Settings) -> PdfLimits:
    return PdfLimits(
        max_pages=settings.ocr_max_pages,
        dpi=settings.ocr_render_dpi,
        max_page_pixels=round(settings.ocr_max_page_megapixels * 1_000_000),
    )


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


def host_config(settings: Settings) -> HostConfig:
    """This machine's capacity ledger (SERVER_*, OCR_CAPACITY_*)."""
    return HostConfig(
        settings.ocr_server_id,
        max_cpu=settings.server_max_cpu,
        max_ram=settings.server_max_ram,
        reserve_cpu_percent=settings.server_reserve_cpu_percent,
        reserve_ram_percent=settings.server_reserve_ram_percent,
        prefix=settings.ocr_redis_prefix,
        lease_seconds=settings.ocr_capacity_lease_seconds,
        costs=parse_costs(settings.ocr_capacity_costs),
    )


def store_address(env: QueueEnvironment, settings: Settings) -> StoreAddress:
    return StoreAddress(
        env.name,
        database_url=None if env.database_url is None else env.database_url.get_secret_value(),
        supabase_url=env.supabase_url,
        supabase_key=(
            None
            if env.supabase_service_key is None
            else env.supabase_service_key.get_secret_value()
        ),
        pool_size=settings.ocr_db_pool_size,
        display_target=env.display_target,
    )


def store_addresses(settings: Settings, envs: Sequence[QueueEnvironment]) -> list[StoreAddress]:
    """The stores of `envs`, in the same (polling) order."""
    return [store_address(env, settings) for env in envs]
