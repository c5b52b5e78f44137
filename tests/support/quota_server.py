"""Stand-ins for the Gemini endpoint that answer with real 429 bodies.

`QuotaServer` answers one chosen request with a 429: every request is logged (arrival
time, model, status, the caller's `x-pool` header); the first request from the `pools`-th
distinct caller on, numbered at least `fail_at` (1-based), gets HTTP 429 with Gemini's
error body (QuotaFailure and RetryInfo carrying `retry_delay`). Everything else gets a
minimal generateContent answer.

`ArrivalQuota` enforces a requests-per-window quota by *arrival* at the server, strictly,
as Gemini counts it: the judge of whether a fleet of limiters kept to its quota.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


def quota_error_body(retry_delay: str, quota_id: str) -> dict[str, Any]:
    return {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {"quotaMetric": "generate_content_requests", "quotaId": quota_id}
                    ],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
            ],
        }
    }


@dataclass
class QuotaServer:
    fail_at: int
    pools: int = 1
    retry_delay: str = "2s"
    quota_id: str = "GenerateRequestsPerMinutePerProjectPerModel"
    log: list[tuple[float, str, int, str]] = field(default_factory=list)
    callers: set[str] = field(default_factory=set)
    failed: bool = False
    base_url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        arrived = time.time()
        model = request.match_info["model"]
        pool = request.headers.get("x-pool", "")
        await request.read()
        self.callers.add(pool)
        if (
            not self.failed
            and len(self.log) + 1 >= self.fail_at
            and len(self.callers) >= self.pools
        ):
            self.failed = True
            self.log.append((arrived, model, 429, pool))
            return web.json_response(quota_error_body(self.retry_delay, self.quota_id), status=429)
        self.log.append((arrived, model, 200, pool))
        return web.json_response(
            {
                "candidates": [{"content": {"parts": [{"text": "ok"}], "role": "model"}}],
                "usageMetadata": {"promptTokenCount": 900, "candidatesTokenCount": 1},
            }
        )


@asynccontextmanager
async def serve_quota_server(
    fail_at: int, pools: int = 1, retry_delay: str = "2s"
) -> AsyncIterator[QuotaServer]:
    server = QuotaServer(fail_at, pools, retry_delay)
    app = web.Application()
    app.router.add_post("/v1beta/models/{model}:generateContent", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.base_url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


@dataclass
class Arrival:
    at: float
    """wall clock (time.time()) when the request reached the handler"""
    status: int
    pool: str
    call: str
    """the caller's `x-call` header: pairs an arrival with the caller's own record"""


@dataclass
class ArrivalQuota:
    """A strict stand-in for Gemini's quota: at most `limit` requests per `window` seconds
    counted by *arrival* at the server (its own clock), over a sliding window
    [t - window, t] (an arrival exactly `window` after an earlier one still sees it: strict).
    A request over the limit gets Gemini's 429 (QuotaFailure naming the requests-per-minute
    quota, RetryInfo with the time until the oldest counted arrival leaves) and does not
    count. Answers come after a latency drawn uniformly from `latency` (Gemini working).
    `inject_at`: the first arrival at or after this wall-clock time gets one 429 whatever
    the count (retry delay `inject_delay`), once."""

    limit: int
    window: float
    latency: tuple[float, float] = (0.0, 0.0)
    seed: int = 0
    inject_at: float | None = None
    inject_delay: str = "2s"
    arrivals: list[Arrival] = field(default_factory=list)
    base_url: str = ""
    _counted: deque[float] = field(default_factory=deque)
    _rng: random.Random = field(default_factory=random.Random)
    injected: float | None = None

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    async def handle(self, request: web.Request) -> web.Response:
        arrived = time.time()
        await request.read()
        pool = request.headers.get("x-pool", "")
        call = request.headers.get("x-call", "")
        while self._counted and self._counted[0] < arrived - self.window:
            self._counted.popleft()
        status = 200
        if self.inject_at is not None and self.injected is None and arrived >= self.inject_at:
            self.injected = arrived
            status = 429
            body = quota_error_body(self.inject_delay, PER_MINUTE_REQUESTS)
        elif len(self._counted) >= self.limit:
            status = 429
            wait = max(0.001, self._counted[0] + self.window - arrived)
            body = quota_error_body(f"{wait:.3f}s", PER_MINUTE_REQUESTS)
        else:
            self._counted.append(arrived)
        self.arrivals.append(Arrival(arrived, status, pool, call))
        if status == 429:
            return web.json_response(body, status=429)
        low, high = self.latency
        if high > 0:
            await asyncio.sleep(self._rng.uniform(low, high))
        return web.json_response(
            {
                "candidates": [
                    {
                        "content": {"parts": [{"text": "ok"}], "role": "model"},
                        "finishReason": "STOP",
                    }
                ],
                "usageMetadata": {"promptTokenCount": 900, "candidatesTokenCount": 1},
            }
        )

    def accepted(self) -> list[float]:
        return sorted(a.at for a in self.arrivals if a.status == 200)

    def fullest_window(self) -> int:
        """Most accepted arrivals in any [t - window, t] (the stand-in's own count)."""
        times = self.accepted()
        best = start = 0
        for end, t in enumerate(times):
            while times[start] < t - self.window:
                start += 1
            best = max(best, end - start + 1)
        return best


PER_MINUTE_REQUESTS = "GenerateRequestsPerMinutePerProjectPerModel"


@asynccontextmanager
async def serve_arrival_quota(quota: ArrivalQuota) -> AsyncIterator[ArrivalQuota]:
    """Serve `quota` on a free loopback port (`quota.base_url`) for the `async with`."""
    app = web.Application(client_max_size=32 * 1024 * 1024)
    for version in ("v1beta", "v1"):  # google-genai picks one by its own rules
        app.router.add_post(f"/{version}/models/{{model}}:generateContent", quota.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    quota.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield quota
    finally:
        await runner.cleanup()
