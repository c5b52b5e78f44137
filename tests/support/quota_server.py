"""A stand-in for the Gemini endpoint that answers one chosen request with a real 429.

Every request is logged (arrival time, model, status, the caller's `x-pool` header).
The first request from the `pools`-th distinct caller on, numbered at least `fail_at`
(1-based), gets HTTP 429 with Gemini's error body: QuotaFailure
and RetryInfo carrying `retry_delay`. Everything else gets a minimal generateContent answer.
"""

from __future__ import annotations

import time
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
