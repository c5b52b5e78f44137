"""The shared Gemini limiter: sliding windows of requests and input tokens per model,
requests per day, fleet cooldown after a 429 and an adaptive ceiling, all in Redis Lua."""

from ratelimit.config import LimiterConfig, Quota, check_model, parse_model_quotas
from ratelimit.estimate import EstimateStats, TokenRates, estimate_input_tokens, image_tokens
from ratelimit.limiter import (
    Cooldown,
    GeminiLimiter,
    LimiterError,
    RequestTooLarge,
    Reservation,
    read_fleet_usage,
)
from ratelimit.quota_error import QuotaSignal, parse_quota_error
from ratelimit.usage import FleetUsage, ModelUsage

__all__ = [
    "Cooldown",
    "EstimateStats",
    "FleetUsage",
    "GeminiLimiter",
    "LimiterConfig",
    "LimiterError",
    "ModelUsage",
    "Quota",
    "QuotaSignal",
    "RequestTooLarge",
    "Reservation",
    "TokenRates",
    "check_model",
    "estimate_input_tokens",
    "image_tokens",
    "parse_model_quotas",
    "parse_quota_error",
    "read_fleet_usage",
]
