"""Approval rules, pure: which requests need approval, who approves, and when a silent approver is
reminded and the admins are told. Inputs are plain values (the shop policy mapping, people, shift
table, moments), so a ticker or a handler can call them without a database.

Policy options (scripts_kb/policy.yaml, all optional, defaults below):
- quality_return_needs_supervisor (true): 质量问题 + 退货退款 needs a supervisor.
- compensation_cap (20 元): 小额补偿 above it needs a supervisor (the cap itself is allowed).
- refund_only_approval_above (100 元): 仅退款 above it needs a supervisor.
- admin_approval_above (500 元): any request whose amount is above it goes to an admin instead.
- approval_remind_minutes (60): shift-time minutes without a decision before the approver is reminded.
- approval_escalate_minutes (180): shift-time minutes before the admins are told.
An agent's "需主管" mark (case.needs_supervisor) always needs a supervisor.

"Shift time" is time during which at least one shift of the shop's table is working: the night
gap (01:00–08:30 with the default shifts) does not count, so a request sent at 00:40 is reminded
at 09:10, not at 01:40. A request submitted outside every shift is delivered at the next shift's
start and its clock starts there; the requester is told that moment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from bot.cases.model import yuan_to_cents
from bot.people import Role
from bot.shifts import Shift, ShiftWindow, windows_around

SUPERVISOR = "supervisor"
ADMIN = "admin"

DEFAULTS: dict[str, Any] = {
    "quality_return_needs_supervisor": True,
    "compensation_cap": 20,
    "refund_only_approval_above": 100,
    "admin_approval_above": 500,
    "approval_remind_minutes": 60,
    "approval_escalate_minutes": 180,
}


@dataclass(frozen=True)
class ApprovalPolicy:
    quality_return_needs_supervisor: bool = True
    compensation_cap_cents: int = 2000
    refund_only_above_cents: int = 10000
    admin_above_cents: int = 50000
    remind_minutes: int = 60
    escalate_minutes: int = 180

    @classmethod
    def from_policy(cls, policy: Mapping[str, Any]) -> ApprovalPolicy:
        """Read the options from the shop policy (kb.policy); a missing one takes its default, a
        malformed one raises ValueError naming it (shown by `kefu kb check` style callers)."""

        def get(name: str) -> Any:
            return policy.get(name, DEFAULTS[name])

        quality = get("quality_return_needs_supervisor")
        if not isinstance(quality, bool):
            raise ValueError(f"policy quality_return_needs_supervisor: expected true/false, got {quality!r}")
        minutes = {}
        for name in ("approval_remind_minutes", "approval_escalate_minutes"):
            value = get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"policy {name}: expected a whole number of minutes > 0, got {value!r}")
            minutes[name] = value
        if minutes["approval_escalate_minutes"] < minutes["approval_remind_minutes"]:
            raise ValueError("policy approval_escalate_minutes must not be shorter than approval_remind_minutes")
        return cls(
            quality_return_needs_supervisor=quality,
            compensation_cap_cents=yuan_to_cents(get("compensation_cap"), "compensation_cap"),
            refund_only_above_cents=yuan_to_cents(get("refund_only_approval_above"), "refund_only_approval_above"),
            admin_above_cents=yuan_to_cents(get("admin_approval_above"), "admin_approval_above"),
            remind_minutes=minutes["approval_remind_minutes"],
            escalate_minutes=minutes["approval_escalate_minutes"],
        )


# -- which requests need approval ------------------------------------------------------------------


def approval_reasons(
    policy: ApprovalPolicy, *, problem: str, resolution: str | None, amount_cents: int | None, needs_supervisor: bool
) -> tuple[str, ...]:
    """The rule codes that make this resolution need approval (empty: the agent may go ahead).

    Codes (labels cases.approval_reasons.<code>): marked, quality_return, compensation_over_cap,
    refund_over_limit."""
    reasons = []
    if needs_supervisor:
        reasons.append("marked")
    if policy.quality_return_needs_supervisor and problem == "quality" and resolution == "return_refund":
        reasons.append("quality_return")
    if resolution == "compensation" and amount_cents is not None and amount_cents > policy.compensation_cap_cents:
        reasons.append("compensation_over_cap")
    if resolution == "refund_only" and amount_cents is not None and amount_cents > policy.refund_only_above_cents:
        reasons.append("refund_over_limit")
    return tuple(reasons)


def approval_level(policy: ApprovalPolicy, amount_cents: int | None) -> str:
    """'admin' above the second amount, else 'supervisor'."""
    return ADMIN if amount_cents is not None and amount_cents > policy.admin_above_cents else SUPERVISOR


def may_approve_level(role: Role, level: str) -> bool:
    return role >= (Role.ADMIN if level == ADMIN else Role.SUPERVISOR)


def choose_approver(people: Iterable, on_duty_ids: Iterable[int], level: str, requester: int):
    """Who gets the request: for 'supervisor', a supervisor on duty, else any supervisor, else an
    admin (on duty first); for 'admin', an admin on duty, else any admin. Never the requester;
    only active people. Ties go to the lowest Telegram id, so the choice is repeatable.
    None when nobody can approve (the caller refuses with `case_no_approver`).

    `people` are objects with tg_id, role (bot.people.Role) and active."""
    duty = set(on_duty_ids)
    candidates = [p for p in people if p.active and p.tg_id != requester]
    wanted_roles = [Role.SUPERVISOR, Role.ADMIN] if level == SUPERVISOR else [Role.ADMIN]
    for role in wanted_roles:
        holders = sorted((p for p in candidates if p.role == role), key=lambda p: p.tg_id)
        for group in ([p for p in holders if p.tg_id in duty], holders):
            if group:
                return group[0]
    return None


# -- timing across shifts --------------------------------------------------------------------------


def _working_spans(shifts: Sequence[Shift], start: datetime, tz: tzinfo, days: int) -> list[tuple[datetime, datetime]]:
    """Merged [start, end) intervals during which some shift works, covering `days` days around start."""
    windows: list[ShiftWindow] = windows_around(shifts, start, tz, days=days)
    spans: list[tuple[datetime, datetime]] = []
    for w in sorted(windows, key=lambda w: w.start):
        if spans and w.start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], w.end))
        else:
            spans.append((w.start, w.end))
    return spans


def add_shift_time(shifts: Sequence[Shift], start: datetime, minutes: int, tz: tzinfo) -> datetime:
    """The moment when `minutes` of shift time have passed since `start` (time outside every shift
    does not count). With no shifts configured all time counts."""
    if not shifts:
        return start + timedelta(minutes=minutes)
    left = timedelta(minutes=minutes)
    for days in (3, 10, 40):  # widen the horizon only if a sparse table needs it
        cursor = start
        remaining = left
        for span_start, span_end in _working_spans(shifts, start, tz, days):
            if span_end <= cursor:
                continue
            cursor = max(cursor, span_start)
            available = span_end - cursor
            if remaining <= available:
                return cursor + remaining
            remaining -= available
            cursor = span_end
    raise ValueError("shift table gives no working time")


def working_now(shifts: Sequence[Shift], moment: datetime, tz: tzinfo) -> bool:
    return not shifts or any(s <= moment < e for s, e in _working_spans(shifts, moment, tz, 1))


def next_working_moment(shifts: Sequence[Shift], moment: datetime, tz: tzinfo) -> datetime:
    """`moment` itself when a shift works then, else the next shift start."""
    if working_now(shifts, moment, tz):
        return moment
    return min(s for s, _ in _working_spans(shifts, moment, tz, 2) if s > moment)


@dataclass(frozen=True)
class ApprovalTiming:
    deliver_at: datetime   # when the approver is told (now, or the next shift's start)
    remind_at: datetime    # no decision by then → a reminder to the approver
    escalate_at: datetime  # no decision by then → the admins are told
    waits_for_shift: bool  # submitted outside shift hours: tell the requester `deliver_at`


def approval_timing(policy: ApprovalPolicy, shifts: Sequence[Shift], submitted_at: datetime, tz: tzinfo) -> ApprovalTiming:
    """When a request submitted (or transferred) at `submitted_at` is delivered, reminded, escalated."""
    deliver = next_working_moment(shifts, submitted_at, tz)
    return ApprovalTiming(
        deliver_at=deliver,
        remind_at=add_shift_time(shifts, deliver, policy.remind_minutes, tz),
        escalate_at=add_shift_time(shifts, deliver, policy.escalate_minutes, tz),
        waits_for_shift=deliver > submitted_at,
    )


def due_actions(approval, now: datetime) -> list[str]:
    """What a ticker should do now for a pending request: any of 'deliver', 'remind', 'escalate'
    (in that order), each once. `approval` has state, deliver_at/delivered_at, remind_at/reminded_at,
    escalate_at/escalated_at."""
    if approval.state != "pending":
        return []
    actions = []
    if approval.delivered_at is None and approval.deliver_at <= now:
        actions.append("deliver")
    if approval.reminded_at is None and approval.remind_at <= now:
        actions.append("remind")
    if approval.escalated_at is None and approval.escalate_at <= now:
        actions.append("escalate")
    return actions
