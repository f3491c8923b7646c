"""Limits at the door (issue 12): what one order, one row, one file and one push may hold.

Every stored text has a maximum; a row over it is a rejected row with a reason ("too_long"),
never a stored value that later breaks a message. A file over a structural limit (rows, columns,
an XLSX part too big or too compressed, duplicate column names) is refused before anything is
written. The figures are generous for real exports (the longest real order numbers are ~25
characters, titles ~60) and small enough that one value can never fill a Telegram message.

| field        | max chars | why                                                      |
|--------------|-----------|----------------------------------------------------------|
| order_no     | 64        | Taobao 19 digits, PDD 240101-123456789012345, JD 12       |
| shop         | 100       | shop names are at most 60 characters on every platform   |
| buyer        | 64        | nickname (platforms cap them at 20-30)                    |
| status_raw   | 100       | status words; several joined for grouped orders          |
| item_title   | 300       | per row (platform titles ≤ 60); merged orders cut to 1000 |
| tracking_no  | 200       | per row (several numbers); merged cut to 1000             |
| carrier      | 64        | per row; merged cut to 300                                |

Amounts: 0 ≤ amount ≤ 10,000,000.00 yuan. Times: years 2000 to 2099. Ids in commands and
buttons: 1 ≤ id ≤ 2**63 - 1 (SQLite INTEGER).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from bot.orders.model import NormalizedOrder

FIELD_MAX = {
    "order_no": 64,
    "shop": 100,
    "buyer": 64,
    "status_raw": 100,
    "item_title": 300,
    "tracking_no": 200,
    "carrier": 64,
}
#: Grouped formats join their items' texts: the joined value is shortened (…) to these.
MERGED_MAX = {"status_raw": 300, "item_title": 1000, "tracking_no": 1000, "carrier": 300}
AMOUNT_MAX = Decimal("10000000.00")
YEAR_MIN, YEAR_MAX = 2000, 2099
#: Rows of data per file (after the header) and cells per row.
MAX_ROWS = 1_000_000
MAX_COLUMNS = 1000
#: XLSX parts, checked from the zip directory before anything is parsed.
XLSX_PART_MAX = 512 * 2**20  # a worksheet (streamed)
#: openpyxl holds every shared string in memory (~5.5 bytes of RSS per byte of XML, measured by
#: benchmarks/hostile_files.py --kinds xlsx_strings_cap: 62 MB of strings peaked at 439 MB).
XLSX_SHARED_STRINGS_MAX = 24 * 2**20
XLSX_OTHER_PART_MAX = 16 * 2**20
XLSX_TOTAL_MAX = 1024 * 2**20
XLSX_RATIO_MAX = 100  # uncompressed / compressed, for parts over XLSX_RATIO_FLOOR
XLSX_RATIO_FLOOR = 1 * 2**20
#: POST /api/orders: nesting depth of the JSON body and orders per request.
JSON_MAX_DEPTH = 8
JSON_MAX_ORDERS = 100_000
ID_MAX = 2**63 - 1


class LimitError(Exception):
    """A value over its limit: (field, limit, value) for the rejected-row message."""

    def __init__(self, field: str, limit: object, value: object) -> None:
        super().__init__(field)
        self.field, self.limit, self.value = field, limit, value


def _time_ok(moment: datetime | None) -> bool:
    return moment is None or YEAR_MIN <= moment.year <= YEAR_MAX


def check_order(order: NormalizedOrder) -> None:
    """Raise LimitError for the first field of `order` over its limit."""
    for name, limit in FIELD_MAX.items():
        value = getattr(order, name)
        if value is not None and len(value) > limit:
            raise LimitError(name, limit, value)
    if order.amount is not None and not (0 <= order.amount <= AMOUNT_MAX):
        raise LimitError("amount", AMOUNT_MAX, order.amount)
    for name in ("created_at", "paid_at", "shipped_at", "ship_from", "ship_by"):
        moment = getattr(order, name)
        if not _time_ok(moment):
            raise LimitError(name, f"{YEAR_MIN}-{YEAR_MAX}", moment)


def shorten(value: str, limit: int) -> str:
    """`value` cut to `limit` characters, the last one an ellipsis when cut."""
    return value if len(value) <= limit else value[: max(limit - 1, 0)] + "…"


def fit_merged(order: NormalizedOrder) -> NormalizedOrder:
    """A merged order with its joined texts shortened to MERGED_MAX."""
    changes = {k: shorten(getattr(order, k), n) for k, n in MERGED_MAX.items() if len(getattr(order, k)) > n}
    return replace(order, **changes) if changes else order


def parse_id(text: object) -> int | None:
    """A positive integer id that fits SQLite (≤ 2**63-1), else None. Accepts int or ASCII digits."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        value = text
    else:
        raw = str(text).strip()
        if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
            return None
        value = int(raw)
    return value if 1 <= value <= ID_MAX else None


def preview(value: object, limit: int = 40) -> str:
    """A value shown in a message about it: at most `limit` characters."""
    return shorten(str(value), limit)
