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
import json
import logging
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.clock import Clock
from bot.db import Database, storage_fault
from bot.orders import limits, text
from bot.orders.formats import (
    GENERIC_ALIASES,
    GENERIC_FIELDS,
    Columns,
    ReadContext,
    RowReader,
    generic_rows,
)
from bot.orders.importer import unknown_words, upsert_orders
from bot.orders.model import NormalizedOrder, RejectedRow
from bot.orders.values import RowError

_GENERIC_COLUMNS = Columns(list(GENERIC_FIELDS), GENERIC_ALIASES)


log = logging.getLogger(__name__)


class BodyError(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def record_reader(ctx: ReadContext) -> RowReader:
    return generic_rows(_GENERIC_COLUMNS, ctx)


def order_from_record(record: Any, read: RowReader, position: int) -> NormalizedOrder | RejectedRow:
    """One pushed item → a normalised order, or the reason it cannot be one."""
    if not isinstance(record, dict):
        return RejectedRow(position, "not_an_object", text.row_error("not_an_object"), {})
    order_no = record.get("order_no")
    if isinstance(order_no, float):
        error = RowError("mangled_number", "order_no", order_no)  # a JSON number lost the digits
    else:
        try:
            order = read(_GENERIC_COLUMNS.pad([record.get(name) for name in GENERIC_FIELDS]))
            limits.check_order(order)
            return order
        except RowError as exc:
            error = exc
        except limits.LimitError as over:
            reason = "too_long" if isinstance(over.value, str) else "out_of_range"
            error = RowError(reason, over.field, over.value)
            error.limit = over.limit
    raw = {str(k)[:64]: limits.preview(v, 200) for k, v in record.items() if v is not None}
    message = text.row_error(error.reason_code, error.column, limits.preview(error.value), getattr(error, "limit", ""))
    return RejectedRow(position, error.reason_code, message, raw)


def read_body(body: bytes, tz: Any) -> tuple[list[Any], list[NormalizedOrder], list[dict], ReadContext]:
    """Parse and validate a pushed body (run in a worker thread: a big body never blocks the loop)."""
    records = parse_body(body)
    ctx = ReadContext(tz=tz)
    read = record_reader(ctx)
    orders, errors = [], []
    for position, record in enumerate(records, start=1):
        item = order_from_record(record, read, position)
        if isinstance(item, RejectedRow):
            errors.append({"index": position - 1, **item.to_json()})
        else:
            orders.append(item)
    return records, orders, errors, ctx


def _loads(content: str) -> Any:
    """json.loads that turns pathological input into BodyError: nesting deeper than the C
    decoder allows (RecursionError) and integers longer than Python converts (ValueError)."""
    try:
        value = json.loads(content)
    except RecursionError:
        raise BodyError("too_deep", str(limits.JSON_MAX_DEPTH)) from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        raise BodyError("malformed_json", str(exc)[:100]) from None
    if _depth_over(value, limits.JSON_MAX_DEPTH):
        raise BodyError("too_deep", str(limits.JSON_MAX_DEPTH))
    return value


def _depth_over(value: Any, limit: int) -> bool:
    """True when containers nest deeper than `limit` (iterative: no recursion to blow)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (list, dict)):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
    return False


def parse_body(body: bytes) -> list[Any]:
    """A JSON array, a single JSON object, or NDJSON (one object per line)."""
    try:
        content = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BodyError("bad_encoding") from None
    content = content.strip()
    if not content:
        raise BodyError("empty_body")
    if content.startswith("["):
        try:
            items = _loads(content)
        except json.JSONDecodeError as exc:
            raise BodyError("malformed_json", f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        if not isinstance(items, list):
            raise BodyError("malformed_json", "not an array")
        return items
    items = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(_loads(line))
        except json.JSONDecodeError as exc:
            if number == 1:
                # Perhaps one pretty-printed object rather than NDJSON.
                try:
                    return [_loads(content)]
                except json.JSONDecodeError:
                    pass
            raise BodyError("malformed_json", f"line {number}: {exc.msg}") from None
    if len(items) > limits.JSON_MAX_ORDERS:
        raise BodyError("too_many_orders", str(limits.JSON_MAX_ORDERS))
    return items


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
        try:
            records, orders, errors, ctx = await asyncio.to_thread(read_body, bytes(body), tz)
        except BodyError as exc:
            return _error(400, exc.reason, detail=exc.detail)
        if errors:
            return _error(400, "invalid_orders", errors=errors, received=len(records))
        counts = await upsert_orders(db, orders, clock=clock, source="api")
        return JSONResponse(
            {
                "received": len(records),
                "inserted": counts.inserted,
                "updated": counts.updated,
                "unchanged": counts.unchanged,
                # status / refund words not in the vocabulary: stored as sent, read conservatively
                "unknown_words": [{"column": c, "word": w, "rows": n} for c, w, n in unknown_words(ctx.unknown)],
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
