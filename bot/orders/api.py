"""HTTP intake for ERPs: `POST /api/orders` (JSON array or NDJSON) and `GET /api/health`.

The bot process serves this app in its own event loop (`serve_api`) when KEFU_API_TOKEN and
KEFU_API_PORT are set. Every push is all-or-nothing: one unreadable item and the answer is 400
with the reason for each bad item, and nothing is written. Items use the generic columns
(`platform, order_no, shop, status, created_at, paid_at, shipped_at, amount, buyer`, plus the
optional `status_raw, refunding, presale, item_title, tracking_no, carrier`): the same fields
`NormalizedOrder.to_json` and `kefu import --json` produce, so their output can be pushed back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.clock import Clock
from bot.db import Database, storage_fault
from bot.orders import text
from bot.clock import to_ts
from bot.orders.importer import unknown_words, upsert_orders, upsert_parsed
from bot.orders.parsing import parse_push
from bot.orders.readers import NotAnExport
from bot.orders.push import BodyError, order_from_record, parse_body, read_body, record_reader  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

#: Bodies up to this size are read in a worker thread; bigger ones in the parsing process.
PUSH_INLINE_MAX = 256 * 2**10


def _authorized(request: Request, token: str) -> bool:
    if not token:
        return False  # no token configured: the endpoint accepts nobody
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))


def _error(status: int, reason: str, **extra: Any) -> JSONResponse:
    params = {k: extra.pop(k) for k in ("detail", "max_mb") if k in extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = {"error": reason, "message": text.api_error(reason, **params), **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def create_api_app(db: Database, settings: Any, clock: Clock) -> Starlette:
    """The Starlette app; `settings` needs kefu_api_token, kefu_import_max_mb and tz."""
    token = settings.kefu_api_token
    max_bytes = settings.kefu_import_max_mb * 2**20
    tz = settings.tz

    async def health(request: Request) -> JSONResponse:
        """200 {"status": "ok"}, or 503 naming the storage fault (disk_full, read_only, corrupt, …)."""
        state = await db.health()
        if state["status"] != "ok":
            state["message"] = text.api_error("storage_fault", detail=state["storage"])
        return JSONResponse(state, status_code=200 if state["status"] == "ok" else 503)

    async def post_orders(request: Request) -> JSONResponse:
        """POST /api/orders; never a plain-text 500: a storage fault is a JSON 503, a bug a JSON 500."""
        try:
            return await _post_orders(request)
        except Exception as exc:  # noqa: BLE001 - logged; the client gets JSON in Chinese
            fault = storage_fault(exc)
            log.exception("POST /api/orders failed")
            if fault:
                return _error(503, "storage_fault", detail=fault)
            return _error(500, "internal_error")

    async def _post_orders(request: Request) -> JSONResponse:
        if not _authorized(request, token):
            return _error(401, "unauthorized")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                return _error(413, "body_too_large", max_mb=settings.kefu_import_max_mb)
        if len(body) <= PUSH_INLINE_MAX:
            # a small push: a worker thread reads it in a few milliseconds
            try:
                records, orders, errors, ctx = await asyncio.to_thread(read_body, bytes(body), tz)
            except BodyError as exc:
                return _error(400, exc.reason, detail=exc.detail)
            if errors:
                return _error(400, "invalid_orders", errors=errors, received=len(records))
            counts = await upsert_orders(db, orders, clock=clock, source="api")
            received, words = len(records), unknown_words(ctx.unknown)
        else:
            # a big one in the parsing process: json.loads would hold this process's GIL throughout
            try:
                parsed = await parse_push(bytes(body), tz=tz, now=to_ts(clock.now()))
            except BodyError as exc:
                return _error(400, exc.reason, detail=exc.detail)
            except NotAnExport as exc:  # the parser ran out of memory or time, or died
                log.warning("POST /api/orders not parsed: %s", exc)
                return _error(500 if exc.reason == "parse_crashed" else 413, exc.reason)
            if parsed.result.errors:
                parsed.close()
                return _error(400, "invalid_orders", errors=parsed.result.errors, received=parsed.result.rows_read)
            received, words = parsed.result.rows_read, parsed.result.unknown_words
            counts = await upsert_parsed(db, parsed, clock=clock)
        return JSONResponse(
            {
                "received": received,
                "inserted": counts.inserted,
                "updated": counts.updated,
                "unchanged": counts.unchanged,
                # status / refund words not in the vocabulary: stored as sent, read conservatively
                "unknown_words": [{"column": c, "word": w, "rows": n} for c, w, n in words],
            }
        )

    return Starlette(
        routes=[
            Route("/api/health", health, methods=["GET"]),
            Route("/api/orders", post_orders, methods=["POST"]),
        ]
    )


class ApiServer(uvicorn.Server):
    """uvicorn inside the bot's event loop: leaves signal handling to the bot."""

    task: asyncio.Task | None = None

    @contextlib.contextmanager
    def capture_signals(self):  # uvicorn would otherwise take over SIGINT/SIGTERM
        yield

    @property
    def port(self) -> int:
        return self.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.should_exit = True
        if self.task is not None:
            await self.task


async def serve_api(app: Starlette, host: str, port: int) -> ApiServer:
    """Start uvicorn as a task in the CURRENT loop and return once it listens (port 0: any free port).

    Stop it with `await server.stop()`. Raises OSError when the address cannot be bound.
    """
    config = uvicorn.Config(
        app, host=host, port=port, lifespan="off", log_config=None, access_log=False, log_level="warning"
    )
    server = ApiServer(config)

    async def run() -> None:
        try:
            await server.serve()
        except SystemExit:
            # uvicorn calls sys.exit() when it cannot bind; in a task that would stop the bot.
            raise OSError(f"cannot listen on {host}:{port}") from None

    server.task = asyncio.create_task(run(), name="kefu-api")
    while not server.started:
        if server.task.done():
            server.task.result()  # raises the OSError
            raise OSError(f"API server stopped while starting on {host}:{port}")
        await asyncio.sleep(0.01)
    return server
