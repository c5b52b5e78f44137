"""A held lease: renew (heartbeat), resize, release, and a keep-alive loop."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from capacity.errors import CapacityError
from capacity.resources import Resources

if TYPE_CHECKING:
    from capacity.ledger import CapacityLedger
    from capacity.state import Admission

log = logging.getLogger("capacity")


class Lease:
    """What one holder holds on one server. `lost` is set once the ledger no longer has
    it (a renewal found it expired, or renewals failed for a whole lease period):
    the holder should stop the work the lease paid for and acquire again."""

    def __init__(self, ledger: CapacityLedger, admission: Admission, valid_until: float) -> None:
        self.ledger = ledger
        self.holder = admission.holder
        self.kind = admission.kind
        self.held = admission.request
        self.token = admission.token
        self.expires_ms = admission.expires_ms
        self.lost = anyio.Event()
        self.released = False
        self._valid_until = valid_until
        """time.monotonic() by which the lease has surely expired without a renewal."""

    def __repr__(self) -> str:
        return f"Lease({self.ledger.server_id}/{self.holder}, {self.kind}, {self.held})"

    async def renew(self) -> bool:
        """One heartbeat. False (and `lost` set) if the lease is gone."""
        if self.released:
            return False
        started = time.monotonic()
        expires = await self.ledger.renew(self.holder, self.token)
        if expires is None:
            self._lose("the ledger no longer has it (expired or taken over)")
            return False
        self.expires_ms = expires
        self._valid_until = started + self.ledger.lease_seconds
        return True

    async def resize(self, kind: str, request: Resources | None = None) -> Admission:
        """Change what this lease holds (e.g. a worker switching type), atomically:
        admitted only if the growth fits; on refusal the lease keeps its old size."""
        request = request if request is not None else self.ledger.cost(kind)
        started = time.monotonic()
        admission = await self.ledger.acquire(self.holder, kind, request, token=self.token)
        if admission.admitted:
            self.kind, self.held, self.expires_ms = kind, request, admission.expires_ms
            self._valid_until = started + self.ledger.lease_seconds
        return admission

    async def release(self) -> bool:
        """Give the lease back (idempotent). False if the ledger no longer had it."""
        if self.released:
            return False
        self.released = True
        return await self.ledger.release(self.holder, self.token)

    async def keep_alive(self, interval: float | None = None) -> None:
        """Renew every `interval` s (default: a third of the lease) until released or lost.

        Redis errors are logged and retried; once no renewal has succeeded for a whole
        lease period the lease counts as lost, even if Redis cannot be asked."""
        every = interval if interval is not None else self.ledger.heartbeat_seconds
        while not self.released and not self.lost.is_set():
            await anyio.sleep(every)
            if self.released:
                return
            try:
                await self.renew()
            except CapacityError as exc:
                if time.monotonic() >= self._valid_until:
                    self._lose(f"no renewal for a whole lease period ({exc})")
                else:
                    log.warning("%s: renewal failed, will retry: %s", self, exc)

    @asynccontextmanager
    async def kept(self) -> AsyncIterator[Lease]:
        """Keep the lease alive (`keep_alive` in the background) for the body of an
        `async with`, then release it, even on error or cancellation (shielded; a failed
        release is logged: the lease then expires on its own). The body's own error comes
        out as itself, not wrapped by the heartbeat's task group."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.keep_alive)
                try:
                    yield self
                finally:
                    tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self.release()
                except CapacityError as exc:
                    log.warning("%s (the lease will expire on its own)", exc)

    def _lose(self, why: str) -> None:
        self.ledger.forget(self.holder, self.token)
        if not self.lost.is_set():
            log.warning("%s lost: %s", self, why)
            self.lost.set()
