"""Reading a pushed body (POST /api/orders): JSON array, one object or NDJSON, validated into
normalised orders with the generic columns. No web framework here: the bot's HTTP endpoint
(bot.orders.api) and the parsing process (bot.orders.parsing) both use it."""

from __future__ import annotations

import json
from typing import Any

from bot.orders import limits, text
from bot.orders.formats import (
    GENERIC_ALIASES,
    GENERIC_FIELDS,
    Columns,
    ReadContext,
    RowReader,
    generic_rows,
)
from bot.orders.model import NormalizedOrder, RejectedRow
from bot.orders.values import RowError

_GENERIC_COLUMNS = Columns(list(GENERIC_FIELDS), GENERIC_ALIASES)


class BodyError(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail

    def __reduce__(self):  # crosses from the parsing process with its detail
        return BodyError, (self.reason, self.detail)


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
