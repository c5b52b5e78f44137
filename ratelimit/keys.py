"""Redis key names of the limiter (the Lua prelude `lua/window.lua` builds the same names;
a test keeps the two in step). All under `OCR_REDIS_PREFIX`."""

from __future__ import annotations

from dataclasses import dataclass

from ratelimit.config import check_model


@dataclass(frozen=True, slots=True)
class ModelKeys:
    grants: str
    """zset '<grant id>:<tokens>' -> stamp (us): arrival bound, or in-flight deadline"""
    state: str
    tickets: str
    """zset '<ticket id>:<tokens>' -> arrival (us)"""
    ticket_deadlines: str
    cooldown: str
    stats: str
    rpm: str
    """plain number: requests in the last window (in flight included), set by publish"""
    tpm: str
    """plain number: input tokens of those requests (estimates until reconciled)"""
    rpd: str
    """plain number: requests since the daily reset"""


@dataclass(frozen=True, slots=True)
class FleetKeys:
    epoch: str
    models: str
    rpm: str
    tpm: str
    workers: str
    worker_expiry: str


def model_keys(prefix: str, model: str) -> ModelKeys:
    model = check_model(model)
    base = f"{prefix}gemini:model:{model}:"
    return ModelKeys(
        grants=f"{base}grants",
        state=f"{base}state",
        tickets=f"{base}tickets",
        ticket_deadlines=f"{base}tickets:deadlines",
        cooldown=f"{base}cooldown",
        stats=f"{base}stats",
        rpm=f"{prefix}gemini:rpm:current:{model}",
        tpm=f"{prefix}gemini:tpm:current:{model}",
        rpd=f"{prefix}gemini:rpd:current:{model}",
    )


def fleet_keys(prefix: str) -> FleetKeys:
    return FleetKeys(
        epoch=f"{prefix}gemini:epoch",
        models=f"{prefix}gemini:models",
        rpm=f"{prefix}gemini:rpm:current",
        tpm=f"{prefix}gemini:tpm:current",
        workers=f"{prefix}gemini:workers",
        worker_expiry=f"{prefix}gemini:workers:expires",
    )
