"""What a Gemini 429 says: how long to wait, and whether a per-day quota ran out.

The delay is only in the body (`google.rpc.RetryInfo.retryDelay`, a protobuf Duration
such as "43s"); a `google.rpc.QuotaFailure` violation whose `quotaId` contains `PerDay`
means the daily quota is spent, and retrying before the daily reset is pointless.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")


def parse_duration(value: object) -> float | None:
    """Seconds in a protobuf Duration, as JSON ("43s", "0.5s") or as {seconds, nanos}."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        return float(match.group(1)) if match else None
    if isinstance(value, Mapping):
        try:
            return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
        except (TypeError, ValueError):
            return None
    return None


@dataclass(frozen=True, slots=True)
class QuotaSignal:
    retry_delay: float | None
    """Seconds from RetryInfo, if the body had one."""
    per_day: bool
    quota_ids: tuple[str, ...] = ()

    def describe(self) -> str:
        what = "per-day quota" if self.per_day else "quota"
        ids = f" ({', '.join(self.quota_ids)})" if self.quota_ids else ""
        delay = f", retry in {self.retry_delay:g} s" if self.retry_delay is not None else ""
        return f"429 {what}{ids}{delay}"


def _error_object(body: Any) -> Mapping[str, Any]:
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except ValueError:
            return {}
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, Mapping):
        return {}
    inner = body.get("error")
    return inner if isinstance(inner, Mapping) else body


def parse_quota_error(body: Any) -> QuotaSignal:
    """Read a 429 body (dict, JSON text, or the SDK's `APIError.details`)."""
    error = _error_object(body)
    details = error.get("details")
    delay: float | None = None
    quota_ids: list[str] = []
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, Mapping):
            continue
        kind = detail.get("@type")
        if kind == RETRY_INFO:
            delay = parse_duration(detail.get("retryDelay"))
        elif kind == QUOTA_FAILURE:
            for violation in detail.get("violations") or []:
                if isinstance(violation, Mapping) and isinstance(violation.get("quotaId"), str):
                    quota_ids.append(violation["quotaId"])
    per_day = any("PerDay" in quota_id for quota_id in quota_ids)
    return QuotaSignal(retry_delay=delay, per_day=per_day, quota_ids=tuple(quota_ids))
