"""A PostgREST stand-in: `POST /rest/v1/rpc/<function>` over real HTTP.

PostgREST itself cannot be installed here, so the Supabase adapter's tests and
benchmark talk to this server instead. It does what PostgREST does for an rpc
call: checks the API key, turns the JSON body into the function's named
arguments with `json_to_record` (so Postgres does the type conversion, arrays
included), calls the real SQL function on the real database, and answers with
a JSON array for set-returning functions, 204 No Content for functions
returning void (as recent PostgREST does; older ones sent `null`), or the bare
JSON value otherwise. Request bodies may be large (OCR results of many pages).
Errors come back in PostgREST's shape: {"code", "message", "details", "hint"}.

By default the calls run as the user of `database_url` (the owner, in tests).
With `role`, every connection first becomes that role, as PostgREST does for the
key's role: `role="service_role"` is the service key of a Supabase project,
`role="anon"` its anon key (see tests/integration/test_lockdown.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from store.sql import load_queries

_Q = load_queries(Path(__file__).with_name("postgrest.sql"))
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_MAX_BODY_BYTES = 64 * 1024 * 1024  # aiohttp's default (1 MiB) is PostgREST's exception


@dataclass(frozen=True, slots=True)
class _Signature:
    returns_set: bool
    returns_void: bool
    args: dict[str, str]


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"code": code, "message": message, "details": None, "hint": None}
    return web.json_response(body, status=status)


class PostgrestStandIn:
    def __init__(self, pool: asyncpg.Pool, service_key: str, schema: str = "public") -> None:
        self._pool = pool
        self._key = service_key
        self._schema = schema
        self._signatures: dict[str, _Signature | None] = {}
        self.calls = 0

    async def _signature(self, function: str) -> _Signature | None:
        if function not in self._signatures:
            row = await self._pool.fetchrow(_Q["signature"], self._schema, function)
            self._signatures[function] = (
                None
                if row is None
                else _Signature(
                    row["returns_set"],
                    row["returns_void"],
                    dict(zip(row["arg_names"], row["arg_types"], strict=True)),
                )
            )
        return self._signatures[function]

    def _query(self, function: str, signature: _Signature, names: list[str]) -> str:
        call_args = ", ".join(f"{n} => _.{n}" for n in names)
        target = f'"{self._schema}".{function}({call_args})'
        source = ""
        if names:
            columns = ", ".join(f"{n} {signature.args[n]}" for n in names)
            source = f"json_to_record($1::json) AS _({columns})"
        if signature.returns_set:
            rows = f"{source}, LATERAL {target} AS f" if source else f"{target} AS f"
            return f"SELECT coalesce(json_agg(f), '[]'::json)::text FROM {rows}"
        return f"SELECT to_json({target})::text" + (f" FROM {source}" if source else "")

    async def handle_rpc(self, request: web.Request) -> web.Response:
        self.calls += 1
        if (
            request.headers.get("apikey") != self._key
            or request.headers.get("Authorization") != f"Bearer {self._key}"
        ):
            return _error(401, "PGRST301", "Invalid API key")
        function = request.match_info["function"]
        body: Any = await request.json() if request.can_read_body else {}
        if not isinstance(body, dict):
            return _error(400, "PGRST102", "rpc body must be a JSON object")
        signature = await self._signature(function) if _IDENT.match(function) else None
        unknown = [k for k in body if signature is None or k not in signature.args]
        if signature is None or unknown:
            return _error(
                404,
                "PGRST202",
                f"Could not find the function {self._schema}.{function}({', '.join(sorted(body))}) "
                "in the schema cache",
            )
        names = [n for n in signature.args if n in body]
        try:
            text = await self._pool.fetchval(
                self._query(function, signature, names), *([json.dumps(body)] if names else [])
            )
        except asyncpg.PostgresError as exc:
            status = 404 if exc.sqlstate == "42883" else 400
            return _error(status, exc.sqlstate or "XX000", str(exc))
        if signature.returns_void:
            return web.Response(status=204)
        return web.Response(text=text, content_type="application/json")


def make_app(stand_in: PostgrestStandIn) -> web.Application:
    app = web.Application(client_max_size=_MAX_BODY_BYTES)
    app.router.add_post("/rest/v1/rpc/{function}", stand_in.handle_rpc)
    return app


@asynccontextmanager
async def serve_postgrest(
    database_url: str,
    service_key: str,
    host: str = "127.0.0.1",
    port: int = 0,
    pool_size: int = 16,
    role: str | None = None,
) -> AsyncIterator[tuple[str, PostgrestStandIn]]:
    """Run the stand-in in the current event loop; yields (base URL, server).
    With `role`, calls run as that role (PostgREST's role for the API key)."""

    async def become(conn: asyncpg.Connection) -> None:
        # Session-wide: asyncpg's RESET ALL between uses does not reset the role.
        await conn.fetchval(_Q["become"], role)

    init = None if role is None else become
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=pool_size, init=init)
    stand_in = PostgrestStandIn(pool, service_key)
    runner = web.AppRunner(make_app(stand_in), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    try:
        yield f"http://{host}:{bound}", stand_in
    finally:
        await runner.cleanup()
        await pool.close()


async def _serve_forever(database_url: str, key: str, port: int, role: str | None) -> None:
    async with serve_postgrest(database_url, key, port=port, role=role) as (url, _):
        print(url, flush=True)
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--role", default=None, help="run calls as this role (e.g. service_role)")
    args = parser.parse_args()
    asyncio.run(_serve_forever(args.database_url, args.key, args.port, args.role))


if __name__ == "__main__":
    main()
