"""The normalised order every reader produces, and the record of a row that could not be read.

Readers of the five export formats and the HTTP endpoint all speak `NormalizedOrder`, so the
storage, the reminders and the scripts never see a platform's own column names or wording.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any

PLATFORMS = ("taobao", "douyin", "pinduoduo", "jd", "other")

#: Normalised statuses in lifecycle order; `closed` is terminal and may follow any of them.
STATUSES = ("unpaid", "paid_unshipped", "partially_shipped", "shipped", "completed", "closed")
STATUS_RANK = {code: rank for rank, code in enumerate(STATUSES)}



@dataclass(slots=True)
class NormalizedOrder:
    platform: str
    order_no: str
    shop: str
    status: str
    status_raw: str
    refunding: bool
    presale: bool
    created_at: datetime | None
    paid_at: datetime | None
    shipped_at: datetime | None
    amount: Decimal | None
    buyer: str
    item_title: str
    tracking_no: str
    carrier: str
    #: The platform holds the order (JD 锁定/暂停, PDD 拼团中, …): kept, but no shipping reminder.
    on_hold: bool = False
    #: The shipping clock starts here instead of paid_at (PDD: 拼单成功时间, the group formed).
    ship_from: datetime | None = None
    #: The order's own shipping deadline (抖店/PDD 承诺发货时间, 预约发货时间): wins over the clock.
    ship_by: datetime | None = None

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            raise ValueError(f"unknown platform {self.platform!r}")
        if self.status not in STATUS_RANK:
            raise ValueError(f"unknown status {self.status!r}")
        if not isinstance(self.order_no, str) or not self.order_no:
            raise ValueError("order_no must be a non-empty string")

    def to_json(self, tz: tzinfo | None = None) -> dict[str, Any]:
        """A JSON-ready dict: times ISO 8601 with the offset of `tz` (the shop zone), amount as a string."""
        return {
            "platform": self.platform,
            "order_no": self.order_no,
            "shop": self.shop,
            "status": self.status,
            "status_raw": self.status_raw,
            "refunding": self.refunding,
            "presale": self.presale,
            "created_at": iso_time(self.created_at, tz),
            "paid_at": iso_time(self.paid_at, tz),
            "shipped_at": iso_time(self.shipped_at, tz),
            "amount": None if self.amount is None else f"{self.amount:.2f}",
            "buyer": self.buyer,
            "item_title": self.item_title,
            "tracking_no": self.tracking_no,
            "carrier": self.carrier,
            "on_hold": self.on_hold,
            "ship_from": iso_time(self.ship_from, tz),
            "ship_by": iso_time(self.ship_by, tz),
        }


@dataclass(slots=True)
class RejectedRow:
    """A row left out of the import, with the reason an agent can act on.

    `line` is the 1-based line (CSV) or row (XLSX) in the file, or the item's position in an API
    body; `raw` maps the file's header names to the row's non-empty cells.
    """

    line: int
    reason_code: str
    message_zh: str
    raw: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "reason_code": self.reason_code, "message": self.message_zh}


def iso_time(moment: datetime | None, tz: tzinfo | None = None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(tz or UTC).isoformat()
