"""The reminder rules: which order is due for what, when, and why an open reminder is over.

Rules (issue 5), all thresholds in hours and overridable per shop:
- `unpaid` / `remind`: status unpaid and created_at + KEFU_UNPAID_REMIND_HOURS <= now (催付).
- `unshipped` / `warn`: paid (or partially shipped), not presale, no open refund, and
  paid_at + KEFU_UNSHIPPED_WARN_HOURS <= now ("12 小时内将超时").
- `unshipped` / `breach`: the same with KEFU_UNSHIPPED_REMIND_HOURS (48 h, the platform deadline).

Night gap: a shipping deadline that falls while no shift is working would be met by nobody, so
its warning is brought forward to EARLY_WARNING_LEAD before the last shift ends.

The due conditions are SQL over the `orders` indexes (status, created_at) and (status, paid_at),
built here once so the engine (which records reminders), `kefu reminders due` and `due_count`
can never disagree. No Telegram and no clock here: callers pass `now`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from itertools import pairwise
from typing import Any

from bot.db import greatest, least
from bot.shifts import Shift, windows_around
from bot.thresholds import (  # noqa: F401 — part of the rules' vocabulary
    MAX_HOURS,
    OVERRIDE_KEYS,
    ShopOverrideError,
    Thresholds,
    parse_shop_overrides,
)

RULES = ("unpaid", "unshipped")
UNSHIPPED_STATUSES = ("paid_unshipped", "partially_shipped")
PAID_STATUSES = ("paid_unshipped", "partially_shipped", "shipped", "completed")
OPEN_STATES = ("pending", "sent", "claimed", "snoozed", "escalated")
CLOSED_STATES = ("done", "resolved")
OUTCOMES = {"unpaid": ("reminded", "no_action"), "unshipped": ("warehouse", "shipped", "no_action")}
#: Closing a shipping BREACH (the order is still unshipped, or the reminder would be resolved):
#: 已催仓库 / 缺货 / 已与买家协商 / 其他. The reminder keeps being watched and fires again after
#: KEFU_BREACH_REPEAT_HOURS if the order is still unshipped (issue 11).
BREACH_OUTCOMES = ("urged_warehouse", "out_of_stock", "agreed_with_buyer", "other")
ALL_OUTCOMES = ("reminded", "warehouse", "shipped", "no_action", *BREACH_OUTCOMES)

#: A warning brought forward by the night gap arrives this long before the last shift ends, so the
#: shift still has time to act (and an unclaimed one is escalated before the shift is gone).
EARLY_WARNING_LEAD = timedelta(hours=1)
#: Escalations repeat at most this often while a reminder stays unclaimed.
ESCALATION_REPEAT = timedelta(hours=1)

#: Buyer-facing script for 查看话术, by (rule, stage): first id found in the knowledge base wins,
#: else the first script of the category.
SCRIPT_CHOICES: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("unpaid", "remind"): ("payment_reminder", ("pay_remind_once",)),
    ("unshipped", "warn"): ("ship_urge", ("ship_when",)),
    ("unshipped", "breach"): ("ship_urge", ("ship_overdue_apology",)),
}


@dataclass(frozen=True)
class Stage:
    rule: str
    stage: str
    statuses: tuple[str, ...]
    time_column: str  # the order's clock for this rule: created_at or paid_at
    hours_key: str  # Thresholds attribute


UNPAID_REMIND = Stage("unpaid", "remind", ("unpaid",), "created_at", "unpaid")
UNSHIPPED_WARN = Stage("unshipped", "warn", UNSHIPPED_STATUSES, "paid_at", "warn")
UNSHIPPED_BREACH = Stage("unshipped", "breach", UNSHIPPED_STATUSES, "paid_at", "unshipped")
STAGES = (UNPAID_REMIND, UNSHIPPED_WARN, UNSHIPPED_BREACH)


@dataclass(frozen=True)
class RuleBook:
    """Default thresholds, per-shop overrides and the shift table: everything a due check needs."""

    defaults: Thresholds
    overrides: Mapping[str, Thresholds] = field(default_factory=dict)
    shifts: tuple[Shift, ...] = ()
    tz: tzinfo | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> RuleBook:
        defaults = Thresholds(
            unpaid=settings.kefu_unpaid_remind_hours,
            warn=settings.kefu_unshipped_warn_hours,
            unshipped=settings.kefu_unshipped_remind_hours,
        )
        return cls(
            defaults=defaults,
            overrides=parse_shop_overrides(settings.kefu_shop_overrides, defaults),
            shifts=tuple(settings.shifts),
            tz=settings.tz,
        )

    def thresholds_for(self, shop: str) -> Thresholds:
        return self.overrides.get(shop, self.defaults)

    def groups(self) -> list[tuple[Thresholds, str, tuple]]:
        """(thresholds, SQL condition on o.shop, params): the default group, then each override shop."""
        shops = tuple(self.overrides)
        default_cond = f"o.shop NOT IN ({', '.join('?' * len(shops))})" if shops else "1"
        groups = [(self.defaults, default_cond, shops)]
        groups += [(t, "o.shop = ?", (shop,)) for shop, t in self.overrides.items()]
        return groups


# --- Night gap ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """A stretch with no shift working: [start, end)."""

    start: datetime
    end: datetime


def coverage_blocks(shifts: Sequence[Shift], moment: datetime, tz: tzinfo) -> list[tuple[datetime, datetime]]:
    """Shift windows around the moment merged into continuous blocks of coverage, in order."""
    windows = windows_around(shifts, moment, tz, days=2)
    blocks: list[list[datetime]] = []
    for window in sorted(windows, key=lambda w: w.start):
        if blocks and window.start <= blocks[-1][1]:
            blocks[-1][1] = max(blocks[-1][1], window.end)
        else:
            blocks.append([window.start, window.end])
    return [(b[0], b[1]) for b in blocks]


def next_gap(shifts: Sequence[Shift], moment: datetime, tz: tzinfo) -> Gap | None:
    """The gap the moment is in, else the next one after the current coverage; None if shifts cover all day."""
    if not shifts:
        return None
    blocks = coverage_blocks(shifts, moment, tz)
    for (start, end), (next_start, _) in pairwise(blocks):
        if start <= moment < next_start:  # in this block or in the gap after it
            return Gap(end, next_start)
    return None


def early_warning_window(book: RuleBook, now: datetime) -> Gap | None:
    """The gap whose deadlines must be warned about now (we are within the lead of its start, or in it)."""
    if not book.shifts or book.tz is None:
        return None
    gap = next_gap(book.shifts, now, book.tz)
    if gap is None or now < gap.start - EARLY_WARNING_LEAD:
        return None
    return gap


# --- Due conditions as SQL ----------------------------------------------------------------------


@dataclass(frozen=True)
class DueQuery:
    """One stage for one shop group: `where` selects due orders (alias o); `due_at` / `deadline_at`
    are SQL expressions for the row; params go with where, due_at and deadline_at in that order."""

    stage: Stage
    thresholds: Thresholds
    where: str
    where_params: tuple
    due_at: str
    due_params: tuple
    deadline_at: str
    deadline_params: tuple


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def shipping_clock_sql(breach_seconds: int) -> str:
    """When an order's shipping clock starts (alias o): its own deadline (抖店/PDD 承诺发货时间) minus the
    breach hours, so the deadline is exactly that promise; else PDD's 拼单成功时间; else payment.
    `breach_seconds` is an int computed here, never user text."""
    return f"COALESCE(o.ship_by - {int(breach_seconds)}, o.ship_from, o.paid_at)"


def due_queries(book: RuleBook, now: datetime) -> list[DueQuery]:
    """Every (stage, shop group) condition that is due at `now`.

    For unshipped orders only the latest stage is due: an order past its breach is not also listed
    as a warning (the engine supersedes an open warning when the breach row appears).
    """
    now_ts = _ts(now)
    gap = early_warning_window(book, now)
    queries = []
    for thresholds, shop_cond, shop_params in book.groups():
        for stage in STAGES:
            status_list = ", ".join(f"'{s}'" for s in stage.statuses)
            column = f"o.{stage.time_column}"
            if stage.rule == "unshipped":
                column = shipping_clock_sql(thresholds.seconds("unshipped"))
            seconds = thresholds.seconds(stage.hours_key)
            cutoff = now_ts - seconds
            conds = [f"o.status IN ({status_list})", f"{column} <= ?", shop_cond]
            where_params: list = [cutoff, *shop_params]
            due_at, due_params = f"{column} + ?", (seconds,)
            deadline_at, deadline_params = "NULL", ()
            if stage.rule == "unshipped":  # with the status term: the partial index orders_unshipped_due
                conds += ["o.presale = 0", "o.refunding = 0", "o.on_hold = 0"]
                breach = thresholds.seconds("unshipped")
                deadline_at, deadline_params = f"{column} + ?", (breach,)
            if stage is UNSHIPPED_WARN:
                breach_cutoff = now_ts - breach
                if gap is not None:
                    # deadlines before the next shift starts: warn now, before the last shift ends
                    gap_end, early_at = _ts(gap.end), _ts(gap.start - EARLY_WARNING_LEAD)
                    where_params[0] = max(cutoff, gap_end - breach - 1)
                    early = least(f"{column} + ?", greatest(column, "?"))
                    due_at = f"CASE WHEN {column} + ? < ? THEN {early} ELSE {column} + ? END"
                    due_params = (breach, gap_end, seconds, early_at, seconds)
                conds.append(f"{column} > ?")
                where_params.append(breach_cutoff)
            queries.append(
                DueQuery(stage, thresholds, " AND ".join(conds), tuple(where_params), due_at, due_params,
                         deadline_at, deadline_params)
            )
    return queries


# --- One order's next deadline (the /order card) -------------------------------------------------


@dataclass(frozen=True)
class OrderDeadline:
    """The reminder clock of one order: `due_at` is the 催付 moment (rule unpaid) or the shipping
    deadline (rule unshipped, the breach); `warn_at` the shipping warning."""

    rule: str
    due_at: datetime
    warn_at: datetime | None = None


def order_deadline(book: RuleBook, *, status: str, shop: str, created_at: datetime | None,
                   paid_at: datetime | None, presale: bool, refunding: bool, on_hold: bool = False,
                   ship_from: datetime | None = None, ship_by: datetime | None = None) -> OrderDeadline | None:
    """Which reminder an order is heading for and when, by the same rules the scan applies;
    None when none applies (paid and shipped, closed, presale, an open refund, held, or no time
    known). The night-gap early warning is left out: the card shows the deadline itself."""
    thresholds = book.thresholds_for(shop)
    if status in UNPAID_REMIND.statuses and created_at is not None:
        return OrderDeadline("unpaid", created_at + timedelta(seconds=thresholds.seconds("unpaid")))
    breach = timedelta(seconds=thresholds.seconds("unshipped"))
    start = ship_by - breach if ship_by is not None else ship_from or paid_at
    if status in UNSHIPPED_STATUSES and start is not None and not presale and not refunding and not on_hold:
        return OrderDeadline("unshipped", start + breach, start + timedelta(seconds=thresholds.seconds("warn")))
    return None


# --- Why an open reminder is over ---------------------------------------------------------------

#: SQL (alias r for reminders, o for orders): the order no longer qualifies for the reminder's rule.
NO_LONGER_DUE_SQL = (
    "((r.rule = 'unpaid' AND o.status <> 'unpaid')"
    " OR (r.rule = 'unshipped' AND (o.status NOT IN ('paid_unshipped', 'partially_shipped')"
    " OR o.refunding = 1 OR o.presale = 1 OR o.on_hold = 1)))"
)


def resolution_reason(rule: str, status: str, refunding: bool, presale: bool, on_hold: bool = False) -> str | None:
    """Why a reminder of `rule` is no longer needed for an order in this state; None if it still is."""
    if rule == "unpaid":
        if status in PAID_STATUSES:
            return "paid"
        if status == "closed":
            return "closed"
        return None
    if status in ("shipped", "completed"):
        return "shipped"
    if status == "closed":
        return "closed"
    if status == "unpaid":
        return "closed"
    if refunding:
        return "refunding"
    if presale:
        return "presale"
    if on_hold:
        return "on_hold"
    return None


def outcomes_for(rule: str, stage: str | None = None) -> tuple[str, ...]:
    if rule == "unshipped" and stage == "breach":
        return BREACH_OUTCOMES
    return OUTCOMES[rule]


def script_choice(rule: str, stage: str) -> tuple[str, tuple[str, ...]]:
    return SCRIPT_CHOICES[(rule, stage)]
