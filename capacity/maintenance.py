"""The periodic duty of a pool: reap its server's expired leases, fold its measured CPU
use into the fleet's costs and charge them, publish its limits and host readings.

Reaping does not depend on this loop (every ledger operation reaps, and the totals
expire with the latest live lease); the loop bounds how long a dead holder's entry stays
in `server:<id>:workers` when nobody else touches the ledger: at most lease + interval."""

from __future__ import annotations

import logging

import anyio

from capacity.errors import CapacityError
from capacity.ledger import CapacityLedger

log = logging.getLogger("capacity")


async def run_maintenance(ledger: CapacityLedger, interval: float | None = None) -> None:
    """Reap, measure and publish every `interval` s (default: half the lease) until
    cancelled."""
    every = interval if interval is not None else ledger.lease_seconds / 2
    while True:
        try:
            await ledger.reap()
            await ledger.refresh_costs()
            await ledger.publish()
        except CapacityError as exc:
            log.warning("%s", exc)
        await anyio.sleep(every)
