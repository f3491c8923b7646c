"""The measures, from the read model's rows to plain figures. No SQL, no Telegram: rows in, dicts out.

Definitions (also in the README):
- first push: the earliest message carrying the reminder (any round, any chat). A reminder re-sent
  after a restart or woken after a snooze is still one reminder with one first push; the period a
  reminder belongs to is the local day of its first push. Reminders never pushed are not counted.
- time to claim: first push → first claim (or 已处理 without a claim), in shift hours when the
  standard says `hours: shift`. A reminder closed by the scan (paid, shipped, closed) before the
  target time passed is not counted; one still open past it, or closed after it, is missed.
- 催付 success: unpaid reminders pushed while the order was unpaid; paid = paid_at within 72 h after
  the first push. Orders paid before the push are reported apart (paid_before_push), never as
  success. Open = pushed less than 72 h ago and unpaid: left out of the rate until decided.
  Acted = someone claimed or closed it; credit goes to the person whose press (claim, done, snooze,
  script) was the last before payment. unacted_paid_rate: the same rate for pushed orders nobody
  acted on (unclaimed or only snoozed) — the uplift is acted rate minus this.
- 发货超时率: paid orders whose shipping deadline (the reminder rules' deadline) fell in the period:
  late if shipped after it or still unshipped past it.
- warning saved: a 发货 warning pushed in the period whose order shipped by its deadline.
- handover take-over: from the later of the shift start and the delivery to the take-over.
- carried over: an item handed to more than max_shifts shifts.
- acknowledgement: announcements needing 收到, recipients whose shift was working when it was sent.
Amounts are integer 分 summed exactly and returned as decimal strings (Decimal, never float).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from bot.kpi.facts import derive, week_start  # noqa: F401 - week_start is used through this module
from bot.kpi.standards import Standard
from bot.kpi.stats import median, minutes, p90, percent
from bot.kpi.store import SLOT, ReminderRow
from bot.kpi.worktime import WorkClock



def yuan(cents: int) -> str:
    return str((Decimal(int(cents)) / 100).quantize(Decimal("0.01")))


@dataclass
class Obs:
    """One measured event for one metric."""

    metric: str
    at: int  # anchor moment (push, deadline, delivery, send)
    shop: str | None = None
    shift: str | None = None
    person: int | None = None
    # `within` metrics: the end state and both durations (seconds)
    end: str = "done"  # done: finished after dur; open: still running, dur so far; void: ended unacted after dur
    work: int = 0
    wall: int = 0
    # `rate` metrics
    flag: bool | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    weight: int = 1  # shipping slots carry many orders
    flagged: int = 0  # ... of which flagged

    def within(self, limit_s: float, hours: str) -> bool | None:
        dur = self.work if hours == "shift" else self.wall
        if self.end == "done":
            return dur <= limit_s
        if dur > limit_s:
            return False
        return None  # still running within the limit, or closed by the scan before it: not judged


@dataclass
class Measured:
    """Everything measured for one period."""

    obs: list[Obs]
    payment: dict[str, Any]
    shipping: dict[str, Any]
    claims: dict[str, Any]
    handover: dict[str, Any]
    broadcasts: dict[str, Any]
    payment_rows: list[dict[str, Any]]
    claim_rows: list[dict[str, Any]]


def measure(
    wc: WorkClock,
    start: int,
    end: int,
    now: int,
    reminders: Sequence[ReminderRow],
    actions: dict[int, list[tuple[int, int, str]]],
    ship_slots: Sequence[tuple[str, int, int, int, int]],
    deliveries: Sequence[Any],
    items: Sequence[Any],
    recipients: Sequence[Any],
    max_shifts: int = 2,
) -> Measured:
    obs: list[Obs] = []
    claim_rows: list[dict[str, Any]] = []
    payment_rows: list[dict[str, Any]] = []
    pay = dict(pushed=0, paid_before_push=0, acted=0, paid_after=0, open=0, recovered_cents=0,
               recovered_acted_cents=0, unacted=0, unacted_paid=0, acted_paid=0)
    pay_minutes: list[float] = []
    warned = saved = warn_open = 0
    claim_s: list[int] = []
    done_s: list[int] = []
    escalated = snoozed = counted = 0

    for r in reminders:
        if r.first_push is None or not start <= r.first_push < end:
            continue
        f = derive(wc, r, actions.get(r.id, []), now)
        push, shift = f.push, f.shift
        counted += 1
        escalated += f.escalated
        snoozed += f.snoozed
        row = {"id": r.id, "rule": f.rule, "stage": f.stage, "push": push, "shop": f.shop, "shift": shift,
               "person": f.claimer, "claim_s": f.claim_s, "done_s": f.done_s, "day": f.day, "week": f.week}
        if f.claim_s is not None:
            claim_s.append(f.claim_s)
        if f.done_s is not None:
            done_s.append(f.done_s)
        claim_rows.append(row)
        if f.pc_end is not None:
            obs.append(Obs("payment_claim", push, f.shop, shift, f.claimer, f.pc_end, f.pc_work, f.pc_wall))
        if f.pay == "before":
            pay["paid_before_push"] += 1
        elif f.pay is not None:
            pay["pushed"] += 1
            pay["acted"] += f.acted
            if f.pay == "open":
                pay["open"] += 1
                continue
            if f.acted:
                pay["acted_paid"] += f.paid
            else:
                pay["unacted"] += 1
                pay["unacted_paid"] += f.paid
            if f.paid:
                pay["paid_after"] += 1
                pay["recovered_cents"] += f.cents
                if f.acted:
                    pay["recovered_acted_cents"] += f.cents
                pay_minutes.append(f.pay_delta / 60)
            obs.append(Obs("payment_success", push, f.shop, shift, f.credit, flag=bool(f.paid)))
            payment_rows.append({"push": push, "shop": f.shop, "shift": shift, "person": f.credit,
                                 "paid": bool(f.paid), "cents": f.cents, "acted": bool(f.acted), "day": f.day,
                                 "week": f.week})
        elif f.warn == "open":
            warn_open += 1
        elif f.warn == "judged":
            warned += 1
            saved += f.warn_ok
            obs.append(Obs("warning_saved", push, f.shop, shift, f.claimer, flag=bool(f.warn_ok)))

    # shipping lateness (SQL-aggregated slots)
    due = late = unknown = 0
    for shop, slot, n, n_late, n_unknown in ship_slots:
        counted_n = n - n_unknown
        due += counted_n
        late += n_late
        unknown += n_unknown
        if counted_n:
            obs.append(Obs("shipping_late", slot, shop, wc.shift_at(slot + SLOT // 2), None,
                           weight=counted_n, flagged=n_late))

    # handover take-over
    take_s: list[int] = []
    taken = open_now = 0
    for d in deliveries:
        begin = max(d["occurrence_start"], d["delivered_at"])
        shift = str(d["occurrence"]).split(":", 1)[0]
        if d["taken_at"] is not None:
            taken += 1
            o = Obs("handover_takeover", d["occurrence_start"], None, shift, d["taken_by"], "done",
                    wc.working_seconds(begin, d["taken_at"]), max(d["taken_at"] - begin, 0))
            take_s.append(o.work)
        else:
            stop = d["resolved_at"] or d["withdrawn_at"]
            upto = stop or now
            open_now += stop is None
            o = Obs("handover_takeover", d["occurrence_start"], None, shift, None, "void" if stop else "open",
                    wc.working_seconds(begin, upto), max(upto - begin, 0))
        obs.append(o)
    handed = [int(i["handed"]) for i in items]
    over = 0
    for i in items:
        flag = int(i["handed"]) > max_shifts
        over += flag
        obs.append(Obs("handover_carried_over", i["created_at"], None, str(i["occurrence"]).split(":", 1)[0],
                       i["author_id"], flag=flag))

    # acknowledgements
    ack_s: list[int] = []
    ack_total = ack_done = 0
    urgent_total = urgent_done = 0
    for b_id, urgent, tg_id, sent_at, acked_at, user_shift in recipients:
        if sent_at is None:
            continue
        if user_shift is None or user_shift not in wc.working_at(sent_at):
            continue  # not on duty when it was sent
        ack_total += 1
        urgent_total += bool(urgent)
        if acked_at is not None:
            ack_done += 1
            urgent_done += bool(urgent)
            o = Obs("ack_time", sent_at, None, user_shift, tg_id, "done", wc.working_seconds(sent_at, acked_at),
                    max(acked_at - sent_at, 0), tags={"urgent": bool(urgent)})
            ack_s.append(o.work)
        else:
            o = Obs("ack_time", sent_at, None, user_shift, tg_id, "open", wc.working_seconds(sent_at, now),
                    now - sent_at, tags={"urgent": bool(urgent)})
        obs.append(o)

    decided = pay["pushed"] - pay["open"]
    payment = {
        "pushed": pay["pushed"],
        "acted": pay["acted"],
        "paid_after": pay["paid_after"],
        "decided": decided,
        "open": pay["open"],
        "rate": percent(pay["paid_after"], decided),
        "recovered_amount": yuan(pay["recovered_cents"]),
        "recovered_amount_acted": yuan(pay["recovered_acted_cents"]),
        "median_minutes_to_pay": _round(median(pay_minutes)),
        "p90_minutes_to_pay": _round(p90(pay_minutes)),
        "acted_paid_rate": percent(pay["acted_paid"], decided - pay["unacted"]),
        "unacted": pay["unacted"],
        "unacted_paid_rate": percent(pay["unacted_paid"], pay["unacted"]),
        "paid_before_push": pay["paid_before_push"],
    }
    shipping = {"due": due, "late": late, "late_rate": percent(late, due), "unknown_ship_time": unknown,
                "warned": warned, "saved_before_breach": saved, "saved_rate": percent(saved, warned),
                "warnings_open": warn_open}
    claims = {"reminders": counted, "claimed": len(claim_s),
              "median_minutes": minutes(median(claim_s)), "p90_minutes": minutes(p90(claim_s)),
              "done": len(done_s), "median_minutes_to_done": minutes(median(done_s)),
              "p90_minutes_to_done": minutes(p90(done_s)),
              "escalated": escalated, "escalation_rate": percent(escalated, counted),
              "snoozed": snoozed, "snooze_rate": percent(snoozed, counted)}
    handover = {"handed": len(deliveries), "taken": taken, "untaken_open": open_now,
                "median_minutes_to_take": minutes(median(take_s)), "p90_minutes_to_take": minutes(p90(take_s)),
                "items": len(items), "carried_over_max": max(handed, default=0),
                "carried_over_more_than": max_shifts, "carried_over_too_long": over,
                "median_shifts_handed": median(handed)}
    broadcasts = {"recipients_on_duty": ack_total, "acknowledged": ack_done, "ack_rate": percent(ack_done, ack_total),
                  "median_minutes_to_ack": minutes(median(ack_s)), "p90_minutes_to_ack": minutes(p90(ack_s)),
                  "urgent_recipients": urgent_total, "urgent_acknowledged": urgent_done}
    return Measured(obs, payment, shipping, claims, handover, broadcasts, payment_rows, claim_rows)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# --- standards ----------------------------------------------------------------------------------


def _selects(std: Standard, o: Obs) -> bool:
    if o.metric != std.metric:
        return False
    if "urgent" in std.params and o.tags.get("urgent") is not None and o.tags["urgent"] != std.params["urgent"]:
        return False
    return True


def judge(std: Standard, observations: Iterable[Obs]) -> tuple[int, int]:
    """(good, n) for a standard over observations; pending observations are left out."""
    good = n = 0
    for o in observations:
        if not _selects(std, o):
            continue
        if std.kind == "within":
            ok = o.within((std.within_minutes or 0) * 60, std.hours)
            if ok is None:
                continue
            n += 1
            good += ok
        elif o.metric == "shipping_late":
            n += o.weight
            good += o.flagged
        elif o.flag is not None:
            n += 1
            good += o.flag
    return good, n


def evaluate(std: Standard, observations: Sequence[Obs], *, shop: str | None = None) -> dict[str, Any]:
    good, n = judge(std, observations)
    return evaluate_counts(std, good, n, shop=shop)


def evaluate_counts(std: Standard, good: int, n: int, *, shop: str | None = None) -> dict[str, Any]:
    achieved = percent(good, n)
    target = std.target_for(shop)
    return {"id": std.id, "name": std.name, "kind": std.kind, "target": target, "direction": std.direction,
            "within_minutes": std.within_minutes, "achieved": achieved, "n": n, "met": std.met(achieved, target)}


def group_key(o: Obs, level: str, wc: WorkClock) -> Any:
    if level == "shop":
        return o.shop
    if level == "shift":
        return o.shift
    if level == "person":
        return o.person
    if level == "day":
        return wc.local_day(o.at).isoformat()
    if level == "week":
        day = wc.local_day(o.at)
        return (day - timedelta(days=day.weekday())).isoformat()
    if level == "hour":
        return wc.local_hour(o.at)
    return "team"


def by_level(std: Standard, observations: Sequence[Obs], level: str, wc: WorkClock) -> dict[Any, dict[str, Any]]:
    groups: dict[Any, list[Obs]] = defaultdict(list)
    for o in observations:
        if _selects(std, o):
            key = group_key(o, level, wc)
            if key is not None:
                groups[key].append(o)
    return {key: evaluate(std, obs, shop=key if level == "shop" else None) for key, obs in groups.items()}


def misses_by(std: Standard, observations: Sequence[Obs], level: str, wc: WorkClock) -> dict[Any, int]:
    """How many observations missed the standard, per shift or per local hour (the cause look-up)."""
    counts: dict[Any, int] = defaultdict(int)
    for o in observations:
        if not _selects(std, o):
            continue
        if std.kind == "within":
            bad = o.within((std.within_minutes or 0) * 60, std.hours) is False
            amount = 1 if bad else 0
        elif o.metric == "shipping_late":
            amount = o.flagged if std.direction == "at_most" else o.weight - o.flagged
        else:
            bad = (o.flag is True) if std.direction == "at_most" else (o.flag is False)
            amount = 1 if bad else 0
        if amount:
            counts[group_key(o, level, wc)] += amount
    return dict(counts)
