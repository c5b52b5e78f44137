"""Settings, read from the environment and `.env` (pydantic-settings).

Names of the system being replaced are kept so deployments carry over. A bad
value stops start-up with one line naming the variable (`SettingsError`);
secret values (keys, and passwords inside URLs) never appear in messages,
`repr` or logs.
"""

from __future__ import annotations

import difflib
import os
import socket
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from ratelimit.config import day_offset_seconds, parse_model_quotas
from workers.pricing import parse_prices

ENVIRONMENT_NAMES = ("prod", "staging", "dev")
"""Queue environments, in the order they are polled."""
DEFAULT_ENVIRONMENT = "default"
"""Name given to the database of plain `DATABASE_URL`, polled after the others."""

_POSTGRES_SCHEMES = {"postgres", "postgresql"}
_REDIS_SCHEMES = {"redis", "rediss", "unix"}
_HTTP_SCHEMES = {"http", "https"}

Percent = Annotated[float, Field(ge=0, lt=100)]
PositiveMs = Annotated[int, Field(ge=100)]


class SettingsError(ValueError):
    """A setting is missing or wrong; the message is one line, secrets excluded."""


def redact_url(url: str) -> str:
    """The URL with any password replaced by `***` (safe to print)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _check_url(value: SecretStr | None, schemes: set[str], what: str) -> SecretStr | None:
    if value is None:
        return None
    raw = value.get_secret_value().strip()
    if not raw:
        return None
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValueError(f"is not a well-formed {what} URL") from None
    if parts.scheme not in schemes:
        expected = " or ".join(f"{s}://" for s in sorted(schemes))
        raise ValueError(f"must be a {what} URL starting with {expected}")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"is not a well-formed {what} URL (no host)")
    return SecretStr(raw)


@dataclass(frozen=True, slots=True)
class QueueEnvironment:
    """One queue database: reached directly (Postgres URL) or through Supabase."""

    name: str
    database_url: SecretStr | None
    supabase_url: str | None
    supabase_service_key: SecretStr | None

    @property
    def transport(self) -> str:
        return "postgres" if self.database_url is not None else "supabase"

    @property
    def display_target(self) -> str:
        if self.database_url is not None:
            return redact_url(self.database_url.get_secret_value())
        return self.supabase_url or "?"


class Settings(BaseSettings):
    """Every setting of ocr-pool; field names are the environment variables, lower-cased."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
        env_ignore_empty=True,
    )

    # --- coordination -----------------------------------------------------
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    ocr_redis_prefix: str = ""
    ocr_server_id: str = Field(default_factory=socket.gethostname, min_length=1)

    # --- the pool ---------------------------------------------------------
    ocr_worker_pool_size: int = Field(4, ge=1, le=1024)
    ocr_min_index_workers: int = Field(1, ge=0)
    ocr_min_acte_workers: int = Field(1, ge=0)
    ocr_rebalance_interval_ms: PositiveMs = 30_000
    ocr_status_interval_ms: PositiveMs = 60_000
    ocr_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """Log lines below this level are left out (`pool.cli.logs`)."""
    ocr_log_format: Literal["text", "json"] = "text"
    """`json`: one JSON object per log line, and per status (`pool.cli.logs`)."""
    ocr_environments: str = ""
    ocr_work_stealing: bool = True
    """An idle worker takes one job of the other type rather than wait."""
    ocr_rebalance_hysteresis: float = Field(0.5, ge=0, le=100)
    """Workers the ideal split must move by (beyond rounding) before workers switch."""
    ocr_index_seconds_seed: float = Field(60.0, gt=0)
    ocr_acte_seconds_seed: float = Field(30.0, gt=0)
    """Service time per job assumed until the fleet has measured it (EWMA in Redis)."""
    ocr_shutdown_grace_seconds: float = Field(600.0, ge=0)
    """On SIGTERM/SIGINT, in-flight jobs get this long to finish before they are released."""
    ocr_metrics_port: int | None = Field(None, ge=0, le=65535)
    """Serve /healthz, /readyz and /metrics on this port (unset: off)."""
    ocr_metrics_host: str = "127.0.0.1"
    """Comma-separated subset of configured environments this pool serves (empty: all)."""

    # --- the queue --------------------------------------------------------
    ocr_lease_seconds: float = Field(120.0, gt=0, le=86_400)
    ocr_heartbeat_seconds: float = Field(20.0, gt=0)
    ocr_max_attempts: int = Field(3, ge=1, le=100)
    ocr_db_pool_size: int = Field(10, ge=1, le=200)

    # --- server capacity ----------------------------------------------------
    server_max_cpu: float | None = Field(None, gt=0)
    server_max_ram: float | None = Field(None, gt=0)
    server_reserve_cpu_percent: Percent = 20.0
    server_reserve_ram_percent: Percent = 20.0
    ocr_capacity_lease_seconds: float = Field(30.0, ge=1, le=3600)
    """Capacity lease: a holder that stops renewing loses its share after this."""
    ocr_capacity_costs: str = ""
    """Per worker type `kind=cpu:ram,...` over the defaults
    (registre 3:1, index 1.5:0.75, acte 1:0.5)."""

    # --- Gemini -----------------------------------------------------------
    gemini_api_key: SecretStr | None = None
    gemini_base_url: str | None = None
    gemini_rpm_limit: int = Field(1600, ge=1)
    gemini_tpm_limit: int = Field(6_400_000, ge=1)
    gemini_rpd_limit: int | None = Field(None, ge=1)
    gemini_window_seconds: float = Field(60.0, ge=0.05, le=86_400)
    gemini_wire_margin_seconds: float = Field(0.25, ge=0, le=30)
    """From the moment a request leaves the client to its arrival at Gemini: a slot
    counts from its send plus this (and the body at 2 MB/s)."""
    """The sliding window RPM and TPM are counted over (shorter only for tests)."""
    gemini_model_limits: str = ""
    """Per-model quotas `model=rpm:tpm[:rpd],...` over GEMINI_RPM/TPM/RPD_LIMIT."""
    gemini_quota_timezone: str = "America/Los_Angeles"
    """Per-day quotas reset at midnight in this zone (Gemini: Pacific time)."""
    gemini_rpd_flush_seconds: float = Field(5.0, ge=0.1, le=3600)
    """How often each pool saves the day's request counts to its queue databases (and puts
    back a greater one into Redis): a Redis restart cannot make the fleet spend the daily
    quota twice (pool/day_usage.py)."""
    gemini_model_index: str = Field("gemini-2.5-flash", min_length=1)
    gemini_model_acte_extract: str = Field("gemini-2.5-flash", min_length=1)
    gemini_model_acte_boost: str = Field("gemini-2.5-flash", min_length=1)
    gemini_timeout_seconds: float = Field(120.0, gt=0, le=3600)
    """Per HTTP call to Gemini; a call past it is abandoned and retried."""
    gemini_max_attempts: int = Field(5, ge=1, le=50)
    """Calls per Gemini request for 5xx, timeouts and broken answers (429s do not count)."""
    gemini_retry_base_seconds: float = Field(1.0, ge=0, le=600)
    gemini_inline_max_mb: float = Field(14.0, gt=0, le=20)
    """An acte PDF up to this size is sent inline, a larger one through the Files API."""
    gemini_max_output_tokens: int | None = Field(None, ge=1, le=1_000_000)
    """Room for each answer (`max_output_tokens`) of every step, unless the step's own
    setting below is set. Unset: index 8192, acte extract and boost 32768."""
    gemini_max_output_tokens_index: int | None = Field(None, ge=1, le=1_000_000)
    gemini_max_output_tokens_acte_extract: int | None = Field(None, ge=1, le=1_000_000)
    gemini_max_output_tokens_acte_boost: int | None = Field(None, ge=1, le=1_000_000)
    gemini_thinking_budget: int | None = Field(None, ge=-1, le=1_000_000)
    """Thinking tokens allowed per request of every step (-1: as the model likes), unless
    the step's own setting is set. Unset: the least the model allows (0, or 128 for
    Gemini 2.5 Pro, the lowest level for Gemini 3)."""
    gemini_thinking_budget_index: int | None = Field(None, ge=-1, le=1_000_000)
    gemini_thinking_budget_acte_extract: int | None = Field(None, ge=-1, le=1_000_000)
    gemini_thinking_budget_acte_boost: int | None = Field(None, ge=-1, le=1_000_000)
    gemini_prices: str = ""
    """USD per million tokens `model=input:output[:thinking],...` over the defaults
    (Google's published prices, `workers.pricing`)."""

    # --- documents ----------------------------------------------------------
    ocr_max_document_mb: float = Field(100.0, gt=0)
    ocr_max_pages: int = Field(500, ge=1, le=100_000)
    ocr_render_dpi: int = Field(200, ge=36, le=600)
    ocr_max_page_megapixels: float = Field(40.0, gt=0, le=1000)
    """Pixel budget of one rendered page: a larger page is rendered at a lower DPI."""
    ocr_index_page_concurrency: int = Field(4, ge=1, le=64)
    ocr_local_roots: str = ""
    """Directories local `supabase_path`s must lie under (os.pathsep or comma separated;
    empty: any local path is read)."""
    ocr_storage_bucket_index: str = Field("index", min_length=1)
    """Supabase Storage bucket of a bare `supabase_path` key (no `<bucket>/` in front) of
    an index row; `<bucket>/<key>` paths name their own bucket."""
    ocr_storage_bucket_acte: str = Field("actes", min_length=1)
    """The same for an acte row (`actes`, the registre extractor's bucket)."""
    ocr_download_timeout_seconds: float = Field(300.0, gt=0)
    ocr_retry_base_seconds: float = Field(30.0, ge=0)
    """A failed job waits this long before its 2nd attempt, 4x longer before each next."""
    ocr_retry_max_seconds: float = Field(1800.0, ge=0)
    ocr_idle_poll_seconds: float = Field(2.0, gt=0, le=60)
    ocr_result_cache: bool = True

    # --- queue databases ----------------------------------------------------
    database_url: SecretStr | None = None
    prod_database_url: SecretStr | None = None
    staging_database_url: SecretStr | None = None
    dev_database_url: SecretStr | None = None
    prod_supabase_url: str | None = None
    staging_supabase_url: str | None = None
    dev_supabase_url: str | None = None
    prod_supabase_service_key: SecretStr | None = None
    staging_supabase_service_key: SecretStr | None = None
    dev_supabase_service_key: SecretStr | None = None

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr) -> SecretStr:
        checked = _check_url(value, _REDIS_SCHEMES, "Redis")
        if checked is None:
            raise ValueError("must not be empty")
        return checked

    @field_validator(
        "database_url", "prod_database_url", "staging_database_url", "dev_database_url"
    )
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_url(value, _POSTGRES_SCHEMES, "PostgreSQL")

    @field_validator(
        "prod_supabase_url", "staging_supabase_url", "dev_supabase_url", "gemini_base_url"
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        checked = _check_url(None if value is None else SecretStr(value), _HTTP_SCHEMES, "HTTP")
        return None if checked is None else checked.get_secret_value().rstrip("/")

    @field_validator(
        "prod_supabase_service_key",
        "staging_supabase_service_key",
        "dev_supabase_service_key",
        "gemini_api_key",
    )
    @classmethod
    def _blank_secret_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(value.get_secret_value().strip())

    @field_validator("ocr_log_level", "ocr_log_format", mode="before")
    @classmethod
    def _log_word(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        word = value.strip()
        return word.upper() if info.field_name == "ocr_log_level" else word.lower()

    @field_validator("ocr_server_id")
    @classmethod
    def _server_id(cls, value: str) -> str:
        if any(c.isspace() for c in value) or ":" in value:
            raise ValueError("must not contain spaces or ':' (it sits between ':' in Redis keys)")
        return value

    @field_validator("ocr_capacity_costs")
    @classmethod
    def _costs(cls, value: str) -> str:
        from capacity.resources import parse_costs

        parse_costs(value)  # raises a one-line ValueError naming the faulty item
        return value

    @field_validator("gemini_prices")
    @classmethod
    def _prices(cls, value: str) -> str:
        parse_prices(value)  # raises a one-line ValueError naming the faulty item
        return value

    @field_validator("gemini_model_limits")
    @classmethod
    def _model_limits(cls, value: str) -> str:
        parse_model_quotas(value)  # raises a one-line ValueError naming the faulty item
        return value

    @field_validator("gemini_quota_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        day_offset_seconds(value)
        return value

    @field_validator("ocr_redis_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if any(c.isspace() for c in value):
            raise ValueError("must not contain spaces")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        minimums = self.ocr_min_index_workers + self.ocr_min_acte_workers
        if minimums > self.ocr_worker_pool_size:
            raise ValueError(
                f"OCR_MIN_INDEX_WORKERS + OCR_MIN_ACTE_WORKERS ({self.ocr_min_index_workers} + "
                f"{self.ocr_min_acte_workers}) exceeds OCR_WORKER_POOL_SIZE "
                f"({self.ocr_worker_pool_size})"
            )
        if self.ocr_retry_max_seconds < self.ocr_retry_base_seconds:
            raise ValueError(
                f"OCR_RETRY_MAX_SECONDS ({self.ocr_retry_max_seconds:g}) is below "
                f"OCR_RETRY_BASE_SECONDS ({self.ocr_retry_base_seconds:g})"
            )
        if self.ocr_heartbeat_seconds * 2 > self.ocr_lease_seconds:
            raise ValueError(
                f"OCR_HEARTBEAT_SECONDS ({self.ocr_heartbeat_seconds:g}) must be at most half of "
                f"OCR_LEASE_SECONDS ({self.ocr_lease_seconds:g}) so a lease survives a missed beat"
            )
        for env in ENVIRONMENT_NAMES:
            url = getattr(self, f"{env}_supabase_url")
            key = getattr(self, f"{env}_supabase_service_key")
            if url and key is None:
                raise ValueError(
                    f"{env.upper()}_SUPABASE_SERVICE_KEY is missing: "
                    f"{env.upper()}_SUPABASE_URL is set"
                )
            if key is not None and not url:
                raise ValueError(
                    f"{env.upper()}_SUPABASE_URL is missing: "
                    f"{env.upper()}_SUPABASE_SERVICE_KEY is set"
                )
        selected = self.selected_environment_names
        known = {e.name for e in self.all_environments()}
        unknown = [name for name in selected if name not in known]
        if unknown:
            raise ValueError(
                f"OCR_ENVIRONMENTS names {', '.join(unknown)}, which "
                f"{'is' if len(unknown) == 1 else 'are'} not configured "
                f"(configured: {', '.join(sorted(known)) or 'none'})"
            )
        return self

    @property
    def local_roots(self) -> tuple[Path, ...]:
        items = self.ocr_local_roots.replace(os.pathsep, ",").split(",")
        return tuple(Path(item.strip()).expanduser().resolve() for item in items if item.strip())

    @property
    def selected_environment_names(self) -> list[str]:
        return [n.strip().lower() for n in self.ocr_environments.split(",") if n.strip()]

    def all_environments(self) -> list[QueueEnvironment]:
        """Configured queue databases in polling order (prod, staging, dev, default)."""
        found: list[QueueEnvironment] = []
        for name in ENVIRONMENT_NAMES:
            database_url = getattr(self, f"{name}_database_url")
            supabase_url = getattr(self, f"{name}_supabase_url")
            if database_url is not None or supabase_url:
                found.append(
                    QueueEnvironment(
                        name,
                        database_url,
                        supabase_url,
                        getattr(self, f"{name}_supabase_service_key"),
                    )
                )
        if self.database_url is not None:
            same = [e for e in found if e.database_url == self.database_url]
            if not same:
                found.append(QueueEnvironment(DEFAULT_ENVIRONMENT, self.database_url, None, None))
        return found

    def environments(self) -> list[QueueEnvironment]:
        """The environments this process serves (OCR_ENVIRONMENTS narrows the list)."""
        selected = self.selected_environment_names
        envs = self.all_environments()
        return [e for e in envs if e.name in selected] if selected else envs

    def require_queue(self) -> list[QueueEnvironment]:
        envs = self.environments()
        if not envs:
            raise SettingsError(
                "DATABASE_URL: no queue database configured; set DATABASE_URL, "
                "{PROD,STAGING,DEV}_DATABASE_URL or {PROD,STAGING,DEV}_SUPABASE_URL "
                "with its _SUPABASE_SERVICE_KEY"
            )
        return envs

    def environment(self, name: str | None) -> QueueEnvironment:
        """One environment by name; without a name, the first in polling order."""
        envs = self.require_queue()
        if name is None:
            return envs[0]
        for env in envs:
            if env.name == name.lower():
                return env
        raise SettingsError(
            f"--env {name}: not configured (configured: {', '.join(e.name for e in envs)})"
        )


def _describe(error: dict[str, Any]) -> str:
    loc = error.get("loc") or ()
    message = str(error.get("msg", "is invalid"))
    message = message.removeprefix("Value error, ")
    if not loc:
        return message
    field = str(loc[0])
    variable = field.upper()
    secret = field.endswith(("_key", "_url")) or "password" in field
    got = "" if secret or "input" not in error else f" (got {error['input']!r})"
    if message and message[0].isupper():
        message = message[0].lower() + message[1:]
    return f"{variable}: {message}{got}"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; on any problem raise `SettingsError` with a one-line message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError("; ".join(_describe(dict(e)) for e in exc.errors())) from None


# --- names that are not settings -------------------------------------------------

NOT_SETTINGS = frozenset(
    {
        # scripts/services.sh exports them; the tests read them (tests/support/databases.py,
        # tests/conftest.py, tests/support/postgres_server.py).
        "OCR_TEST_DATABASE_URL",
        "OCR_TEST_REDIS_URL",
        "OCR_PG_BIN",
        # scripts/services.sh's own knobs.
        "OCR_PG_PORT",
        "OCR_REDIS_PORT",
        "OCR_SERVICES_DIR",
        # docker compose's own (deploy/compose.yaml reads it from deploy/.env).
        "OCR_POOL_IMAGE",
    }
)
"""Variables of ocr-pool's families read by its scripts and tests, never by `Settings`:
no typo warning for them."""


def watched(name: str) -> bool:
    """Whether a variable's name is of a family of ocr-pool settings, so that one which is
    not a setting is most likely a typo: `OCR_*`, `GEMINI_*`, `SERVER_*`, `*_SUPABASE_*`,
    `*_DATABASE_URL`."""
    upper = name.upper()
    return (
        upper.startswith(("OCR_", "GEMINI_", "SERVER_"))
        or "_SUPABASE_" in upper
        or upper.endswith("_DATABASE_URL")
    )


def setting_names() -> frozenset[str]:
    """Every setting's variable name."""
    return frozenset(name.upper() for name in Settings.model_fields)


def closest_setting(name: str, known: Collection[str]) -> str | None:
    """The known setting whose name is most like `name` (difflib), if any is close."""
    matches = difflib.get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


@dataclass(frozen=True, slots=True)
class UnknownSetting:
    """A variable of a settings family that no setting reads, and where it was found."""

    name: str
    sources: tuple[str, ...]
    closest: str | None

    def warning(self) -> str:
        """One line naming the variable and its likely intent, never its value."""
        where = " and ".join(self.sources)
        hint = (
            f"did you mean {self.closest}?"
            if self.closest
            else "no setting has a similar name (see .env.example)"
        )
        return f"warning: {self.name} (in {where}) is not a setting and is ignored; {hint}"


def unknown_settings(
    sources: Mapping[str, Iterable[str]],
    known: Collection[str] | None = None,
    allowed: Collection[str] = NOT_SETTINGS,
) -> list[UnknownSetting]:
    """Names of a settings family (`watched`) that are neither a setting nor `allowed`,
    each once (with every source it came from), in name order.

    `sources` maps a place ("the environment", ".env") to the variable names found there.
    """
    known_names = setting_names() if known is None else frozenset(k.upper() for k in known)
    allowed_names = frozenset(a.upper() for a in allowed)
    found: dict[str, list[str]] = {}
    for source, names in sources.items():
        for raw in names:
            name = raw.upper()
            if not watched(name) or name in known_names or name in allowed_names:
                continue
            places = found.setdefault(name, [])
            if source not in places:
                places.append(source)
    return [
        UnknownSetting(name, tuple(places), closest_setting(name, known_names))
        for name, places in sorted(found.items())
    ]


def dotenv_names(path: Path) -> list[str]:
    """The variable names a `.env` file sets (none if there is no such file)."""
    if not path.is_file():
        return []
    from dotenv import dotenv_values

    return [name for name in dotenv_values(path, encoding="utf-8") if name]


def settings_typos(
    environ: Mapping[str, str] | None = None, env_file: Path | None = None
) -> list[UnknownSetting]:
    """`unknown_settings` of the process environment and of the `.env` file the settings
    read (the working directory's)."""
    env_path = Path(str(Settings.model_config.get("env_file") or ".env"))
    return unknown_settings(
        {
            "the environment": list(os.environ if environ is None else environ),
            ".env": dotenv_names(env_path if env_file is None else env_file),
        }
    )
