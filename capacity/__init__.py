"""The CPU/RAM capacity ledger: admission per machine, shared through Redis with
other programs, that never leaks (leases expire unless renewed).

Protocol for other programs: capacity/PROTOCOL.md. Knows nothing of documents;
imports neither `pool` nor `workers`.
"""

from capacity.costs import Sample, effective_cost, effective_costs, fold, split_cpu
from capacity.errors import CapacityError, CapacityRefused
from capacity.fleet import read_fleet, server_ids
from capacity.keys import ServerKeys, server_keys
from capacity.lease import Lease
from capacity.ledger import CapacityLedger, HostConfig
from capacity.maintenance import run_maintenance
from capacity.meter import CpuMeter
from capacity.policy import Decision, Limits, available_milli, can_ever_fit, decide
from capacity.pressure import (
    Pressure,
    PressureGuard,
    Reading,
    busy_percent,
    judge,
    progress_allowed,
)
from capacity.probe import HostProbe, machine_size, resolve_limits
from capacity.resources import DEFAULT_COSTS, Resources, format_costs, parse_costs
from capacity.state import Admission, LeaseInfo, ServerState

__all__ = [
    "DEFAULT_COSTS",
    "Admission",
    "CapacityError",
    "CapacityLedger",
    "CapacityRefused",
    "CpuMeter",
    "Decision",
    "HostConfig",
    "HostProbe",
    "Lease",
    "LeaseInfo",
    "Limits",
    "Pressure",
    "PressureGuard",
    "Reading",
    "Resources",
    "Sample",
    "ServerKeys",
    "ServerState",
    "available_milli",
    "busy_percent",
    "can_ever_fit",
    "decide",
    "effective_cost",
    "effective_costs",
    "fold",
    "format_costs",
    "judge",
    "machine_size",
    "parse_costs",
    "progress_allowed",
    "read_fleet",
    "resolve_limits",
    "run_maintenance",
    "server_ids",
    "server_keys",
    "split_cpu",
]
