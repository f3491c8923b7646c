"""One reminder's measured facts: everything the measures take from a reminder, worked out once.

`derive` is the one definition of the per-reminder measures (first push → claim/done in shift
hours, the shift and local day of the push, 催付 success and credit, 发货 warning saved). Both the
in-memory measures (bot/kpi/measures.py) and the stored read model (bot/kpi/readmodel.py, table
kpi_reminder_facts) are built from it, so the two can never define a figure differently.

A fact is `settled` when its stored form no longer depends on the clock (only on the records): its
催付 decided, its warning judged. Unsettled facts are recomputed by every report. A payment_claim
observation still open (unclaimed, unresolved) grows with the clock: the read model stores it
without its durations and works them out at report time from the push.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import NamedTuple

from bot.kpi.store import ReminderRow
from bot.kpi.worktime import WorkClock

PAY_WINDOW = 72 * 3600


class Fact(NamedTuple):
    """Column order = kpi_reminder_facts (after reminder_id)."""

    push: int | None
    day: str | None
    week: str | None
    rule: str
    stage: str
    shop: str | None
    shift: str | None
    claimer: int | None
    claim_s: int | None
    done_s: int | None
    escalated: int
    snoozed: int
    # payment_claim observation (unpaid reminders): done | open | void, shift-hours and wall seconds
    pc_end: str | None
    pc_work: int | None
    pc_wall: int | None
    # 催付 success: None (not 催付) | before (paid before the push) | open (undecided) | decided
    pay: str | None
    acted: int
    paid: int
    credit: int | None
    cents: int
    pay_delta: int | None  # seconds from push to payment (paid ones)
    # 发货 warning: None | skip (no longer an obligation) | open | judged
    warn: str | None
    warn_ok: int
    settled: int


FACT_COLUMNS = Fact._fields


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def first_action(actions: Sequence[tuple[int, int, str]], kinds: Iterable[str], after: int) -> tuple[int, int] | None:
    kinds = set(kinds)
    for at, actor, action in actions:
        if action in kinds and at >= after:
            return at, actor
    return None


def derive(wc: WorkClock, r: ReminderRow, acts: Sequence[tuple[int, int, str]], now: int) -> Fact:
    push = r.first_push
    if push is None:  # never pushed: not counted anywhere
        return Fact(None, None, None, r.rule, r.stage, r.shop, None, None, None, None, 0, 0,
                    None, None, None, None, 0, 0, None, 0, None, None, 0, 1)
    shift = wc.shift_at(push)
    claim = first_action(acts, ("claim", "done"), 0)
    done = first_action(acts, ("done",), 0)
    day = wc.local_day(push)
    claimer = claim[1] if claim else None
    claim_s = wc.working_seconds(push, claim[0]) if claim else None
    done_s = wc.working_seconds(push, done[0]) if done else None
    escalated = int(r.escalations > 0)
    snoozed = int(any(a[2] == "snooze" for a in acts))
    pc_end = pc_work = pc_wall = pay = credit = pay_delta = warn = None
    acted = paid = cents = warn_ok = 0
    settled = 1
    if r.rule == "unpaid":
        if claim:
            pc_end, pc_work, pc_wall = "done", wc.working_seconds(push, claim[0]), claim[0] - push
        else:
            stop = r.resolved_at if r.state == "resolved" and r.resolved_at else None
            upto = stop if stop is not None else now
            pc_end = "void" if stop is not None else "open"
            pc_work, pc_wall = wc.working_seconds(push, upto), upto - push
        if r.paid_at is not None and r.paid_at <= push:
            pay = "before"
        else:
            acted_before = [a for a in acts if r.paid_at is None or a[0] <= r.paid_at]
            acted = int(any(a[2] in ("claim", "done") for a in acted_before))
            credit = acted_before[-1][1] if acted and acted_before else None
            paid = int(r.paid_at is not None and r.paid_at - push <= PAY_WINDOW)
            if paid or now - push > PAY_WINDOW:
                pay = "decided"
                cents = int(r.amount_cents or 0) if paid else 0
                pay_delta = r.paid_at - push if paid else None
            else:
                pay, settled = "open", 0
    elif r.stage == "warn" and r.deadline_at is not None:
        shipped = r.shipped_at if r.shipped_at is not None else (
            r.resolved_at if r.resolved_reason == "shipped" else None)
        if r.resolved_reason in ("closed", "refunding", "presale", "on_hold") and shipped is None:
            warn = "skip"
        elif shipped is not None:
            warn, warn_ok = "judged", int(shipped <= r.deadline_at)
        elif now > r.deadline_at:
            warn = "judged"
        else:
            warn, settled = "open", 0
    return Fact(push, day.isoformat(), week_start(day).isoformat(), r.rule, r.stage, r.shop, shift, claimer,
                claim_s, done_s, escalated, snoozed, pc_end, pc_work, pc_wall, pay, acted, paid, credit, cents,
                pay_delta, warn, warn_ok, settled)
