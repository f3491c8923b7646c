"""After-sales cases: codes, the record, money in 分, and the state machine. Pure data, no I/O.

Codes (English, stable: stored in the database and printed by `kefu cases list --json`) are
shown to people through templates/labels/cases.yaml (`cases.states.<code>`, `cases.problems.<code>`…).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation

from bot.people import UserError

# -- codes -----------------------------------------------------------------------------------------

#: The script categories an after-sales problem falls under (labels: cases.problems.<code>).
PROBLEMS = (
    "quality",            # 质量问题
    "damaged",            # 破损/污渍
    "missing",            # 少件/漏发
    "wrong_item",         # 错发
    "no_reason",          # 七天无理由
    "logistics",          # 物流
    "not_received",       # 显示签收未收到/空包裹
    "description",        # 描述不符
    "service_complaint",  # 服务投诉 (counted per person per calendar month)
    "safety",             # 过敏/安全
    "other",
)
RESOLUTIONS = ("refund_only", "return_refund", "exchange", "resend", "repair", "compensation", "other")
SHIPPING_PAYERS = ("buyer", "shop", "courier", "none")
RESPONSIBLE = ("buyer", "shop", "warehouse", "courier", "supplier", "agent")
EVIDENCE_KINDS = ("photo", "document", "video", "voice")

OPEN = "open"
PENDING = "pending_approval"
APPROVED = "approved"
REJECTED = "rejected"
WAITING_BUYER = "waiting_buyer"
WAITING_WAREHOUSE = "waiting_warehouse"
DONE = "done"
CLOSED = "closed"
STATES = (OPEN, PENDING, APPROVED, REJECTED, WAITING_BUYER, WAITING_WAREHOUSE, DONE, CLOSED)
FINISHED = frozenset({DONE, CLOSED})
#: States in which the case still needs someone (end-of-shift prompt, handover digest).
UNFINISHED = tuple(s for s in STATES if s not in FINISHED)

#: The moves a person may make with `CaseService.move`. 待审批 is entered only by submitting a
#: request, 已批准/已驳回 only by the approver's decision, 处理中 from a finished case only by
#: reopening with a reason, and 处理中 from 待审批 only by withdrawing: those have their own methods.
MOVES: dict[str, frozenset[str]] = {
    OPEN: frozenset({WAITING_BUYER, WAITING_WAREHOUSE, DONE, CLOSED}),
    PENDING: frozenset(),
    APPROVED: frozenset({WAITING_BUYER, WAITING_WAREHOUSE, DONE, CLOSED}),
    REJECTED: frozenset({OPEN, CLOSED}),
    WAITING_BUYER: frozenset({WAITING_WAREHOUSE, OPEN, DONE, CLOSED}),
    WAITING_WAREHOUSE: frozenset({WAITING_BUYER, OPEN, DONE, CLOSED}),
    DONE: frozenset(),
    CLOSED: frozenset(),
}
#: States from which a request for approval may be submitted (again, after a rejection or withdrawal).
SUBMITTABLE = frozenset({OPEN, REJECTED})
#: Moves that go on with the chosen resolution: refused while it needs an approval it has not got.
PROCEEDING = frozenset({WAITING_BUYER, WAITING_WAREHOUSE, DONE})


def check_move(state: str, target: str) -> None:
    """Raise `case_bad_move` unless `MOVES` allows state → target."""
    if target not in STATES:
        raise UserError("case_bad_state", value=target)
    if target not in MOVES[state]:
        raise UserError("case_bad_move", state=state, target=target)


# -- money -----------------------------------------------------------------------------------------

_AMOUNT_RE = re.compile(r"^\d{1,9}(\.\d{1,2})?$")
_CURRENCY = str.maketrans("", "", "¥￥元 ,，")


def parse_amount(text: str | int | Decimal) -> int:
    """'12', '12.5', '¥12.50', '12元', Decimal('12.5') → 分 (1250). Exact; more than two decimals,
    negative or unreadable amounts raise `case_bad_amount`."""
    if isinstance(text, int):
        raise TypeError("pass yuan as text or Decimal; cents are int already")
    raw = str(text)
    cleaned = raw.strip().translate(_CURRENCY).replace("．", ".")
    cleaned = cleaned.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if not _AMOUNT_RE.match(cleaned):
        raise UserError("case_bad_amount", value=raw.strip()[:30])
    try:
        value = Decimal(cleaned)
        return int(value.scaleb(2))  # at most two decimals (checked above): exact
    except (InvalidOperation, ArithmeticError):
        raise UserError("case_bad_amount", value=raw.strip()[:30]) from None


def format_amount(cents: int | None) -> str | None:
    """分 → exact decimal string ('12.50'); None stays None."""
    if cents is None:
        return None
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def yuan_to_cents(value: object, name: str) -> int:
    """A policy number of 元 (int, float written in YAML, or text) → 分, exactly from its text."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"policy {name}: expected an amount in 元, got {value!r}")
    try:
        return parse_amount(str(value))
    except UserError:
        raise ValueError(f"policy {name}: expected an amount in 元 (up to 2 decimals), got {value!r}") from None


# -- records ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    id: int
    case_id: int
    kind: str
    file_id: str
    file_unique_id: str
    caption: str
    added_by: int
    added_at: datetime


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    case_id: int
    at: datetime
    actor: int | None
    action: str  # opened, edit, move, submit, withdraw, nudge, transfer, approve, reject, reopen, evidence, note, remind, escalate, deliver
    field: str
    old: str
    new: str
    detail: str


@dataclass(frozen=True)
class Approval:
    id: int
    case_id: int
    requester: int
    approver: int
    level: str  # 'supervisor' | 'admin'
    reasons: tuple[str, ...]
    resolution: str | None
    amount_cents: int | None
    state: str  # pending | approved | rejected | withdrawn
    submitted_at: datetime
    deliver_at: datetime
    delivered_at: datetime | None
    remind_at: datetime
    reminded_at: datetime | None
    escalate_at: datetime
    escalated_at: datetime | None
    nudged_at: datetime | None
    decided_by: int | None
    decided_at: datetime | None
    decision_reason: str

    @property
    def pending(self) -> bool:
        return self.state == "pending"

    @property
    def amount(self) -> str | None:
        return format_amount(self.amount_cents)


@dataclass(frozen=True)
class Case:
    id: int
    platform: str
    shop: str
    order_no: str
    order_id: int | None
    buyer: str
    buyer_phone: str
    buyer_address: str
    item: str
    problem: str
    resolution: str | None
    amount_cents: int | None
    shipping_payer: str | None
    responsible: str | None
    responsible_person: int | None
    needs_supervisor: bool
    description: str
    notes: str
    state: str
    opened_by: int
    owner: int
    due_at: datetime | None
    opened_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    source: str
    #: The latest approval request (any state), when there was one.
    approval: Approval | None = None
    evidence: tuple[Evidence, ...] = field(default=())

    @property
    def amount(self) -> str | None:
        """The amount as an exact decimal string ('12.50'), None when not set."""
        return format_amount(self.amount_cents)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


#: Fields `CaseService.edit` may change, with how a value is checked (see service._clean_field).
EDITABLE = (
    "platform", "shop", "order_no", "buyer", "buyer_phone", "buyer_address", "item", "problem",
    "resolution", "amount_cents", "shipping_payer", "responsible", "responsible_person",
    "needs_supervisor", "description", "notes", "due_at",
)
#: Fields an approval is about: frozen while a request is pending; a change after approval needs a new one.
APPROVAL_FIELDS = frozenset({"problem", "resolution", "amount_cents", "needs_supervisor"})
TEXT_LIMIT = 1000
SHORT_LIMIT = 200
