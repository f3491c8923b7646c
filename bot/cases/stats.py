"""Per-period figures of the cases for /kpi (the service-standards issue adds them to its report).

Pure over stored rows read through the store; the local zone decides weeks and calendar months.
- opened / closed: cases opened in the period; moves into 已完成 or 已关闭 in the period.
- time to approval: submitted → decided, for requests decided (approved or rejected) in the
  period; median and P90 by nearest rank, in seconds of wall time.
- approval rate: approved / (approved + rejected) among those decisions; None without any.
- compensation paid per week: the amount of 小额补偿 cases that reached 已完成 in the period,
  summed per ISO week (Monday) of that moment, in 分.
- 服务投诉 per person per calendar month: cases with problem 服务投诉 whose responsible party is
  客服 with a named person, opened in that calendar month (the count the source's penalty rule
  uses: "一个自然月内因服务原因收到买家投诉…"). Shown to supervisors only (the handler's job).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from bot.cases.model import CLOSED, DONE
from bot.cases.store import CaseStore


def nearest_rank(values: list[float], percent: float) -> float | None:
    """The nearest-rank percentile (P50 = median as the lower middle value), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class CaseStats:
    since: datetime
    until: datetime
    opened: int
    closed: int
    decided: int
    approved: int
    approval_rate: float | None
    approval_median_s: float | None
    approval_p90_s: float | None
    #: ISO week's Monday (local) → 分 paid as 小额补偿
    compensation_per_week: dict[date, int] = field(default_factory=dict)
    #: tg_id → 服务投诉 cases in the calendar month of `month`
    complaints_by_person: dict[int, int] = field(default_factory=dict)
    month: str = ""


async def case_stats(store: CaseStore, since: datetime, until: datetime, tz: tzinfo, month_of: datetime | None = None) -> CaseStats:
    opened = await store.search(opened_from=since, opened_to=until)
    finished = await store.moves_in(since, until, DONE) + await store.moves_in(since, until, CLOSED)
    decisions = await store.decided_approvals(since, until)
    waits = [(a.decided_at - a.submitted_at).total_seconds() for a in decisions if a.decided_at]
    approved = sum(1 for a in decisions if a.state == "approved")

    per_week: dict[date, int] = defaultdict(int)
    for case_id, at in await store.moves_in(since, until, DONE):
        case = await store.get(case_id, with_evidence=False)
        if case is not None and case.resolution == "compensation" and case.amount_cents:
            local_day = at.astimezone(tz).date()
            per_week[local_day - timedelta(days=local_day.weekday())] += case.amount_cents

    month_moment = (month_of or until - timedelta(seconds=1)).astimezone(tz)
    first = datetime(month_moment.year, month_moment.month, 1, tzinfo=tz)
    after = (first + timedelta(days=32)).replace(day=1)
    complaints = Counter(
        c.responsible_person
        for c in await store.search(opened_from=first, opened_to=after)
        if c.problem == "service_complaint" and c.responsible == "agent" and c.responsible_person is not None
    )
    return CaseStats(
        since=since, until=until, opened=len(opened), closed=len(finished), decided=len(decisions),
        approved=approved, approval_rate=(approved / len(decisions)) if decisions else None,
        approval_median_s=nearest_rank(waits, 50), approval_p90_s=nearest_rank(waits, 90),
        compensation_per_week=dict(sorted(per_week.items())), complaints_by_person=dict(complaints),
        month=f"{first.year:04d}-{first.month:02d}",
    )
