"""KpiService: the one entry point of the KPI feature. Plain data in and out, a clock, no Telegram.

The Telegram phase stays thin:
- /kpi               → `await kpi.report(Period.parse(text, today, words), scope, viewer)` → render templates/kpi/
- XLSX / chart button → `report_xlsx(report)` / `charts.render_*` (call off the event loop)
- /standards         → `await kpi.standards_review(today)` (last 4 weeks + one suggestion per standard)
- morning review     → `await kpi.morning_review(yesterday)` at the day shift's start
- Monday pack        → `await kpi.monday_pack(monday)` then `charts.render_pack(pack)` off the loop
- nudges             → every tick: `await kpi.due_nudges()` → tell the on-duty agents → `record_nudges()`
- when               → bot.kpi.schedule: `morning_review_due(...)`, `monday_pack_due(...)`
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from bot.cases import CaseStore, case_stats
from bot.clock import Clock, to_ts
from bot.db import Database
from bot.kpi.measures import (
    Measured,
    Obs,
    by_level,
    evaluate,
    evaluate_counts,
    judge,
    measure,
    misses_by,
    week_start,
    yuan,
)
from bot.kpi.schedule import monday_pack_due, morning_review_due
from bot.kpi.standards import Standard
from bot.kpi.stats import median, minutes, p90, percent
from bot.kpi import daily
from bot.kpi.daily import COUNTS, Groups
from bot.kpi.readmodel import PERSON, ReadModel
from bot.kpi.store import SLOT, KpiStore
from bot.kpi.worktime import WorkClock
from bot.reminders import RuleBook

#: A standard met by at least this many percentage points every week of the look-back → tighten.
WIDE_MARGIN_PP = 5.0
LOOKBACK_WEEKS = 4
SUPERVISOR_ROLES = ("supervisor", "admin")


class PeriodError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    """Shop-local days, both ends included."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise PeriodError("the period ends before it starts")

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> Period:
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1))

    def bounds(self, tz: tzinfo) -> tuple[int, int]:
        start = datetime.combine(self.first, time(0), tz)
        end = datetime.combine(self.last + timedelta(days=1), time(0), tz)
        return to_ts(start), to_ts(end)

    @classmethod
    def parse(cls, text: str, today: date, words: PeriodWords) -> Period:
        """A named period (`words`, from labels: `kpi.period_words`) or YYYY-MM-DD[~YYYY-MM-DD];
        empty text: today."""
        text = (text or "").strip()
        for sep in words.range_separators:
            text = text.replace(sep, "~")
        monday = week_start(today)
        last_month = today.replace(day=1) - timedelta(days=1)
        spans = {
            "today": (today, today), "yesterday": (today - timedelta(days=1),) * 2,
            "this_week": (monday, today), "last_week": (monday - timedelta(days=7), monday - timedelta(days=1)),
            "this_month": (today.replace(day=1), today), "last_month": (last_month.replace(day=1), last_month),
        }
        if not text:
            return cls(today, today)
        for name, span in spans.items():
            if text in getattr(words, name):
                return cls(*span)
        match = re.fullmatch(r"(\d{4}-\d{2}-\d{2})(?:\s*~\s*(\d{4}-\d{2}-\d{2}))?", text)
        if not match:
            raise PeriodError(text)
        try:
            first = date.fromisoformat(match.group(1))
            last = date.fromisoformat(match.group(2)) if match.group(2) else first
        except ValueError:
            raise PeriodError(text) from None
        return cls(first, last)


@dataclass(frozen=True)
class PeriodWords:
    """The /kpi period vocabulary (from labels: `kpi.period_words`), so this file holds no user-facing text."""

    today: tuple[str, ...]
    yesterday: tuple[str, ...]
    this_week: tuple[str, ...]
    last_week: tuple[str, ...]
    this_month: tuple[str, ...]
    last_month: tuple[str, ...]
    range_separators: tuple[str, ...]  # read as "~" between two dates

    @classmethod
    def from_labels(cls, words: Any) -> PeriodWords:
        return cls(**{name: tuple(str(w) for w in words[name]) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Viewer:
    tg_id: int
    role: str  # agent | supervisor | admin

    @property
    def supervisor(self) -> bool:
        return self.role in SUPERVISOR_ROLES


class KpiService:
    def __init__(self, db: Database, clock: Clock, book: RuleBook, standards: tuple[Standard, ...], *,
                 large_unpaid_cents: int = 50000, stuck_unpaid_hours: float = 48, stuck_unshipped_factor: float = 2,
                 near_miss_hours: float = 2, read_model: bool = True) -> None:
        self.db = db
        self.clock = clock
        self.book = book
        self.tz = book.tz
        self.standards = standards
        self.store = KpiStore(db, book)
        #: The report from the stored read model (bot/kpi/readmodel.py); None: recompute from the
        #: records in memory (the reference definition the read model is tested against).
        self.read_model = ReadModel(db, book, self.store) if read_model else None
        self.cases = CaseStore(db)
        self.large_unpaid_cents = large_unpaid_cents
        self.stuck_unpaid_s = int(stuck_unpaid_hours * 3600)
        self.stuck_unshipped_factor = stuck_unshipped_factor
        self.near_miss_s = int(near_miss_hours * 3600)
        #: Problems of the standards file when the defaults had to be used instead (from_settings).
        self.load_problems: list[str] = []

    @classmethod
    def from_settings(cls, db: Database, clock: Clock, settings: Any) -> KpiService:
        """The bot's service. A broken KEFU_STANDARDS_FILE does not stop the bot: the shipped
        defaults are used and the problems kept in `load_problems` (the Telegram side tells the
        admins; `kefu standards check` names them too)."""
        from bot.kpi.standards import StandardsError, load_standards

        problems: list[str] = []
        try:
            standards = load_standards(getattr(settings, "kefu_standards_file", None))
        except StandardsError as exc:
            standards = load_standards(None)
            problems = [str(p) for p in exc.problems]
        service = cls(db, clock, RuleBook.from_settings(settings), standards)
        service.load_problems = problems
        return service

    def reload(self, standards: tuple[Standard, ...]) -> None:
        self.standards = standards

    def today(self) -> date:
        return self.clock.now().astimezone(self.tz).date()

    def _max_shifts(self) -> int:
        for std in self.standards:
            if std.metric == "handover_carried_over" and "max_shifts" in std.params:
                return int(std.params["max_shifts"])
        return 2

    async def measure(self, period: Period) -> tuple[Measured, WorkClock]:
        return (await self.measure_many([period]))[0]

    async def measure_many(self, periods: list[Period], *, reminders: bool = True
                           ) -> list[tuple[Measured, WorkClock]]:
        """Measure adjacent periods from ONE read of the records (the report and its previous period).
        reminders=False: handover and acknowledgements only (the read model has the rest). The
        Python work runs in a thread, off the event loop."""
        bounds = [p.bounds(self.tz) for p in periods]
        start, end = min(b[0] for b in bounds), max(b[1] for b in bounds)
        now = to_ts(self.clock.now())
        rows = (
            await self.store.reminders(start, end) if reminders else [],
            await self.store.reminder_actions(start, end) if reminders else {},
            await self.store.shipping_slots(start, end, now) if reminders else [],
            await self.store.handover_deliveries(start, end),
            await self.store.handover_items(start, end),
            await self.store.ack_recipients(start, end),
        )
        return await asyncio.to_thread(self._measure_rows, bounds, start, end, now, rows)

    def _measure_rows(self, bounds: list[tuple[int, int]], start: int, end: int, now: int,
                      rows: tuple) -> list[tuple[Measured, WorkClock]]:
        wc = WorkClock(self.book.shifts, self.tz, start, end)
        results = []
        for a, b in bounds:
            slots = [s for s in rows[2] if a <= s[1] + SLOT // 2 < b]
            deliveries = [d for d in rows[3] if a <= d["occurrence_start"] < b]
            items = [i for i in rows[4] if a <= i["created_at"] < b]
            recipients = [r for r in rows[5] if r[3] is not None and a <= r[3] < b]
            results.append((measure(wc, a, b, now, rows[0], rows[1], slots, deliveries, items, recipients,
                                    max_shifts=self._max_shifts()), wc))
        return results

    async def refresh_read_model(self, days: int = 92) -> bool:
        """Background upkeep of the read model (the bot's ticker): one bounded step; once nothing
        is dirty, the last `days` days are built, so /kpi finds them ready. True when current."""
        if self.read_model is None:
            return True
        today = self.today()
        start, end = Period(today - timedelta(days=days), today).bounds(self.tz)
        return await self.read_model.refresh(start, end, to_ts(self.clock.now()))

    # --- the report ----------------------------------------------------------------------------

    async def report(self, period: Period, scope: str = "team", viewer: Viewer | None = None, *,
                     trend: bool = True) -> dict[str, Any]:
        """The KPI report as plain data (the `kefu report kpi --json` object).

        scope: team | shift:<name> | shop:<name> | person:<tg_id>. An agent viewer sees the team and
        their own figures only: other people are removed from every breakdown, and a person scope
        other than their own is refused (PermissionError)."""
        if viewer is not None and not viewer.supervisor:
            if scope.startswith("person:") and scope != f"person:{viewer.tg_id}":
                raise PermissionError("agents see their own figures only")
            if scope.startswith(("shift:", "shop:")):
                scope = "team"
        people = await self.store.people()
        if self.read_model is not None:
            figures, standards, breakdowns = await self._from_read_model(period, scope, viewer, people, trend)
        else:
            figures, standards, breakdowns = await self._from_records(period, scope, viewer, people, trend)
        report = {
            "period": {"from": period.first.isoformat(), "to": period.last.isoformat(), "days": period.days,
                       "timezone": str(self.tz), "generated_at": self.clock.now().astimezone(self.tz).isoformat(),
                       "previous": {"from": period.previous().first.isoformat(),
                                    "to": period.previous().last.isoformat()}},
            "scope": scope,
            "standards": standards,
            **figures,
            "breakdowns": breakdowns,
            "cases": await self.case_figures(period, viewer, people),
        }
        return report

    @staticmethod
    def _standard_entry(std: Standard, entry: dict[str, Any], prev: dict[str, Any] | None,
                        levels: dict[str, dict[Any, dict[str, Any]]], viewer: Viewer | None,
                        people: dict[int, dict[str, Any]]) -> dict[str, Any]:
        entry["why"] = std.why
        entry["scope"] = list(std.scope)
        if prev is not None:
            entry["previous_achieved"] = prev["achieved"]
            entry["trend_pp"] = (None if prev["achieved"] is None or entry["achieved"] is None
                                 else round(entry["achieved"] - prev["achieved"], 1))
        for level, groups in levels.items():
            if level == "person":
                groups = {str(k): v | {"name": people.get(k, {}).get("name", str(k))}
                          for k, v in groups.items() if _may_see(viewer, k)}
            entry[f"by_{level}"] = groups
        return entry

    async def _from_records(self, period: Period, scope: str, viewer: Viewer | None,
                            people: dict[int, dict[str, Any]], trend: bool) -> tuple[dict, list, dict]:
        """The reference: every record of the period worked through in memory (bot/kpi/measures.py)."""
        if trend:
            (measured, wc), (prev_measured, _) = await self.measure_many([period, period.previous()])
            previous = _by_metric(_scoped(prev_measured.obs, scope))
        else:
            measured, wc = await self.measure(period)
            previous = None
        obs = _by_metric(_scoped(measured.obs, scope))
        shop = scope[5:] if scope.startswith("shop:") else None
        standards = []
        for std in self.standards:
            mine = obs.get(std.metric, [])
            prev = None if previous is None else evaluate(std, previous.get(std.metric, []))
            levels = {level: by_level(std, mine, level, wc) for level in ("shift", "shop", "person")
                      if level in std.scope}
            standards.append(self._standard_entry(std, evaluate(std, mine, shop=shop), prev, levels, viewer, people))
        figures = {"payment_reminders": measured.payment, "shipping": measured.shipping, "claims": measured.claims,
                   "handover": measured.handover, "broadcasts": measured.broadcasts}
        return figures, standards, self._breakdowns(measured, wc, scope, viewer, people)

    async def _from_read_model(self, period: Period, scope: str, viewer: Viewer | None,
                               people: dict[int, dict[str, Any]], trend: bool) -> tuple[dict, list, dict]:
        """The same figures from the stored read model, aggregated in SQL (bot/kpi/readmodel.py);
        handover and acknowledgements (a few rows a day) are still measured from their records."""
        rm = self.read_model
        assert rm is not None
        periods = [period, period.previous()] if trend else [period]
        bounds = [p.bounds(self.tz) for p in periods]
        lo, hi = min(x[0] for x in bounds), max(x[1] for x in bounds)
        now = to_ts(self.clock.now())
        await rm.sync(lo, hi, now)
        measured_all = await self.measure_many(periods, reminders=False)
        wc = measured_all[0][1]
        ship_obs: list[list[Obs]] = []
        ship_total = [0, 0, 0]
        day_start: dict[str, int] = {}
        for i, (pa, pb) in enumerate(bounds):
            found = []
            for day, shop, shift, n, n_late, n_unknown in await rm.ship_days(pa, pb, now):
                if i == 0:
                    ship_total[0] += n - n_unknown
                    ship_total[1] += n_late
                    ship_total[2] += n_unknown
                if n - n_unknown:
                    at = day_start.get(day)
                    if at is None:
                        at = day_start[day] = Period(date.fromisoformat(day), date.fromisoformat(day)).bounds(self.tz)[0]
                    found.append(Obs("shipping_late", at, shop, shift, None, weight=n - n_unknown, flagged=n_late))
            ship_obs.append(found)
        measured = measured_all[0][0]
        obs = _by_metric(_scoped(measured.obs + ship_obs[0], scope))
        previous = _by_metric(_scoped(measured_all[1][0].obs + ship_obs[1], scope)) if trend else None
        groups = [await rm.daily(pa, pb) for pa, pb in bounds]
        return await asyncio.to_thread(self._figures_from_groups, scope, viewer, people, trend, groups, (lo, hi, now),
                                       obs, previous, measured, ship_obs, ship_total, wc)

    def _figures_from_groups(self, scope: str, viewer: Viewer | None, people: dict[int, dict[str, Any]],
                             trend: bool, groups: list[Groups], span: tuple[int, int, int],
                             obs: dict[str, list[Obs]], previous: dict[str, list[Obs]] | None, measured: Measured,
                             ship_obs: list[list[Obs]], ship_total: list[int], wc: WorkClock
                             ) -> tuple[dict, list, dict]:
        """The CPU part of the read-model report (run in a thread, off the event loop)."""
        shop = scope[5:] if scope.startswith("shop:") else None
        lo, hi, now = span
        waits = _Waits(WorkClock(self.book.shifts, self.tz, lo, max(hi, now)), now)
        standards = []
        for std in self.standards:
            levels_wanted = [level for level in ("shift", "shop", "person") if level in std.scope]
            if std.metric in PERSON:
                scoped = groups[0].select(scope, PERSON[std.metric])
                good, n = _judged(std, scoped, waits, None).get("team", (0, 0))
                entry = evaluate_counts(std, good, n, shop=shop)
                prev = None
                if trend:
                    pg, pn = _judged(std, groups[1].select(scope, PERSON[std.metric]), waits, None).get("team", (0, 0))
                    prev = evaluate_counts(std, pg, pn)
                levels = {level: {k: evaluate_counts(std, g, n, shop=k if level == "shop" else None)
                                  for k, (g, n) in _judged(std, scoped, waits, level).items()}
                          for level in levels_wanted}
            else:
                mine = obs.get(std.metric, [])
                entry = evaluate(std, mine, shop=shop)
                prev = None if previous is None else evaluate(std, previous.get(std.metric, []))
                levels = {level: by_level(std, mine, level, wc) for level in levels_wanted}
            standards.append(self._standard_entry(std, entry, prev, levels, viewer, people))

        g = groups[0]
        t = {name: g.total(name) for name in COUNTS}
        decided = t["pushed"] - t["open"]
        pay_delta = g.values("pay_delta_v").get("team", daily.EMPTY)
        claim_all = g.values("claim_v").get("team", daily.EMPTY)
        done_all = g.values("done_v").get("team", daily.EMPTY)
        payment = {
            "pushed": t["pushed"], "acted": t["acted"], "paid_after": t["paid"], "decided": decided,
            "open": t["open"], "rate": percent(t["paid"], decided),
            "recovered_amount": yuan(t["cents"]), "recovered_amount_acted": yuan(t["cents_acted"]),
            "median_minutes_to_pay": _round(daily.median(pay_delta, _per_minute)),
            "p90_minutes_to_pay": _round(daily.p90(pay_delta, _per_minute)),
            "acted_paid_rate": percent(t["acted_paid"], decided - t["unacted"]),
            "unacted": t["unacted"], "unacted_paid_rate": percent(t["unacted_paid"], t["unacted"]),
            "paid_before_push": t["before"],
        }
        shipping = {"due": ship_total[0], "late": ship_total[1], "late_rate": percent(ship_total[1], ship_total[0]),
                    "unknown_ship_time": ship_total[2], "warned": t["warned"], "saved_before_breach": t["saved"],
                    "saved_rate": percent(t["saved"], t["warned"]), "warnings_open": t["warn_open"]}
        claims = {"reminders": t["n"], "claimed": len(claim_all),
                  "median_minutes": minutes(daily.median(claim_all)), "p90_minutes": minutes(daily.p90(claim_all)),
                  "done": len(done_all), "median_minutes_to_done": minutes(daily.median(done_all)),
                  "p90_minutes_to_done": minutes(daily.p90(done_all)),
                  "escalated": t["escalated"], "escalation_rate": percent(t["escalated"], t["n"]),
                  "snoozed": t["snoozed"], "snooze_rate": percent(t["snoozed"], t["n"])}
        figures = {"payment_reminders": payment, "shipping": shipping, "claims": claims,
                   "handover": measured.handover, "broadcasts": measured.broadcasts}

        out: dict[str, Any] = {}
        claim_rows, pay_rows = g.select(scope, "claimer"), g.select(scope, "credit")
        weeks: dict[str, str] = {}

        def week_of(day: str) -> str:
            if day not in weeks:
                weeks[day] = week_start(date.fromisoformat(day)).isoformat()
            return weeks[day]

        for level in ("day", "week", "shift", "shop", "person"):
            rekey = week_of if level == "week" else None
            c_key = p_key = "day" if level == "week" else level
            if level == "person":
                c_key, p_key = "claimer", "credit"
            counts = claim_rows.by(c_key, ["n"], rekey)
            claim_v, done_v = claim_rows.values("claim_v", c_key, rekey), claim_rows.values("done_v", c_key, rekey)
            pays = {k: v for k, v in pay_rows.by(p_key, ["decided", "paid", "cents"], rekey).items() if v[0]}
            result = {}
            for key in sorted(set(counts) | set(pays), key=str):
                if key is None or (level == "person" and not _may_see(viewer, key)):
                    continue
                claim_s, done_s = claim_v.get(key, daily.EMPTY), done_v.get(key, daily.EMPTY)
                pushed, paid, cents = pays.get(key, (0, 0, 0))
                entry = {"reminders": counts.get(key, [0])[0], "claimed": len(claim_s),
                         "median_minutes_to_claim": minutes(daily.median(claim_s)),
                         "p90_minutes_to_claim": minutes(daily.p90(claim_s)),
                         "median_minutes_to_done": minutes(daily.median(done_s)),
                         "p90_minutes_to_done": minutes(daily.p90(done_s)),
                         "payment_pushed": pushed, "payment_paid": paid,
                         "payment_rate": percent(paid, pushed), "recovered_amount": yuan(cents)}
                if level == "person":
                    entry["name"] = people.get(key, {}).get("name", str(key))
                result[str(key)] = entry
            out[level] = result
        _add_late(out, ship_obs[0], wc)
        return figures, standards, out

    async def case_figures(self, period: Period, viewer: Viewer | None = None,
                           people: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
        """After-sales cases of the period (bot.cases' `case_stats`): opened / closed, time to
        approval (median, P90, minutes of wall time), approval rate, 小额补偿 paid per week (decimal
        strings), and 服务投诉 per person of the calendar month of the period's last day — the last
        only for supervisors (and the CLI: no viewer)."""
        start, end = Period(period.first, period.last).bounds(self.tz)
        since = datetime.fromtimestamp(start, self.tz)
        until = datetime.fromtimestamp(end, self.tz)
        stats = await case_stats(self.cases, since, until, self.tz)
        out: dict[str, Any] = {
            "opened": stats.opened, "closed": stats.closed, "decided": stats.decided, "approved": stats.approved,
            "approval_rate": None if stats.approval_rate is None else round(100 * stats.approval_rate, 1),
            "median_minutes_to_approval": minutes(stats.approval_median_s),
            "p90_minutes_to_approval": minutes(stats.approval_p90_s),
            "compensation_per_week": {d.isoformat(): yuan(c) for d, c in stats.compensation_per_week.items()},
            "compensation_paid": yuan(sum(stats.compensation_per_week.values())),
        }
        if viewer is None or viewer.supervisor:
            people = people if people is not None else await self.store.people()
            out["complaints_month"] = stats.month
            out["complaints_by_person"] = {
                str(k): {"name": people.get(k, {}).get("name", str(k)), "count": v}
                for k, v in sorted(stats.complaints_by_person.items(), key=lambda kv: (-kv[1], kv[0]))}
        return out

    def _breakdowns(self, measured: Measured, wc: WorkClock, scope: str, viewer: Viewer | None,
                    people: dict[int, dict[str, Any]]) -> dict[str, Any]:
        claim_rows = _scoped_rows(measured.claim_rows, scope)
        pay_rows = _scoped_rows(measured.payment_rows, scope)
        out: dict[str, Any] = {}
        for level in ("day", "week", "shift", "shop", "person"):
            groups: dict[Any, dict[str, Any]] = defaultdict(lambda: {"claim_s": [], "done_s": [], "reminders": 0,
                                                                     "pushed": 0, "paid": 0, "cents": 0})
            for row in claim_rows:
                g = groups[_row_key(row, level, wc)]
                g["reminders"] += 1
                if row["claim_s"] is not None:
                    g["claim_s"].append(row["claim_s"])
                if row["done_s"] is not None:
                    g["done_s"].append(row["done_s"])
            for row in pay_rows:
                g = groups[_row_key(row, level, wc)]
                g["pushed"] += 1
                g["paid"] += row["paid"]
                g["cents"] += row["cents"]
            result = {}
            for key, g in sorted(groups.items(), key=lambda kv: str(kv[0])):
                if key is None or (level == "person" and not _may_see(viewer, key)):
                    continue
                entry = {"reminders": g["reminders"], "claimed": len(g["claim_s"]),
                         "median_minutes_to_claim": minutes(median(g["claim_s"])),
                         "p90_minutes_to_claim": minutes(p90(g["claim_s"])),
                         "median_minutes_to_done": minutes(median(g["done_s"])),
                         "p90_minutes_to_done": minutes(p90(g["done_s"])),
                         "payment_pushed": g["pushed"], "payment_paid": g["paid"],
                         "payment_rate": percent(g["paid"], g["pushed"]), "recovered_amount": yuan(g["cents"])}
                if level == "person":
                    entry["name"] = people.get(key, {}).get("name", str(key))
                result[str(key)] = entry
            out[level] = result
        _add_late(out, measured.obs, wc)
        return out

    # --- nudges ---------------------------------------------------------------------------------

    async def due_nudges(self, now: datetime | None = None, share: float = 0.8) -> list[dict[str, Any]]:
        """Reminders the on-duty agents can still save: unclaimed 催付 reminders whose wait (shift
        hours, as the standard counts) has reached `share` of a claim standard's time but not the
        time itself. Each is returned once per standard (after `record_nudges`); one that is already
        past the time is left to the supervisors' digest (counted as missed in the report)."""
        now_ts = to_ts(now or self.clock.now())
        result = []
        for std in self.standards:
            if std.metric != "payment_claim" or std.kind != "within" or not std.within_minutes:
                continue
            limit = std.within_minutes * 60
            rows = await self.store.unclaimed_payment_reminders(std.id)
            if not rows:
                continue
            wc = WorkClock(self.book.shifts, self.tz, min(r["first_sent_at"] for r in rows), now_ts)
            for r in rows:
                waited = wc.elapsed(r["first_sent_at"], now_ts, std.hours)
                if share * limit <= waited < limit:
                    result.append({"reminder_id": r["id"], "standard": std.id, "order_no": r["order_no"],
                                   "platform": r["platform"], "shop": r["shop"],
                                   "amount": None if r["amount_cents"] is None else yuan(r["amount_cents"]),
                                   "waited_minutes": round(waited / 60, 1), "limit_minutes": std.within_minutes,
                                   "minutes_left": round((limit - waited) / 60, 1)})
        return result

    async def record_nudges(self, nudges: list[dict[str, Any]], now: datetime | None = None) -> None:
        """Call after the nudges were sent: each reminder is nudged once per standard."""
        await self.store.record_nudges([(n["reminder_id"], n["standard"]) for n in nudges],
                                       to_ts(now or self.clock.now()))

    # --- weeks, suggestions --------------------------------------------------------------------

    async def weekly(self, last_week_monday: date, weeks: int = LOOKBACK_WEEKS) -> tuple[list[date], dict[str, Any]]:
        """Each standard's achieved % per week for `weeks` weeks ending with the week starting at
        last_week_monday; also the observations, for the cause look-up."""
        first = last_week_monday - timedelta(days=7 * (weeks - 1))
        period = Period(first, last_week_monday + timedelta(days=6))
        measured, wc = await self.measure(period)
        mondays = [first + timedelta(days=7 * i) for i in range(weeks)]
        results = {}
        for std in self.standards:
            per_week = by_level(std, measured.obs, "week", wc)
            results[std.id] = [per_week.get(m.isoformat(), evaluate(std, [])) for m in mondays]
        return mondays, {"results": results, "obs": measured.obs, "wc": wc, "measured": measured}

    async def standards_review(self, today: date | None = None) -> list[dict[str, Any]]:
        """/standards: each standard with its last 4 complete weeks and at most one suggestion."""
        today = today or self.today()
        last_monday = week_start(today) - timedelta(days=7)
        mondays, data = await self.weekly(last_monday)
        return [
            {"id": std.id, "name": std.name, "why": std.why, "kind": std.kind, "target": std.target_percent,
             "direction": std.direction, "within_minutes": std.within_minutes,
             "weeks": [{"week": m.isoformat(), "achieved": r["achieved"], "n": r["n"], "met": r["met"]}
                       for m, r in zip(mondays, data["results"][std.id])],
             "suggestion": suggest(std, data["results"][std.id], data["obs"], data["wc"])}
            for std in self.standards
        ]

    # --- morning review ------------------------------------------------------------------------

    async def morning_review(self, day: date | None = None) -> dict[str, Any]:
        """Yesterday's anomalies (seed: 每天查看前一日异常订单). Empty sections are left out; no
        section at all means nothing happened. Each item carries `ref` for a button to its card."""
        day = day or self.today() - timedelta(days=1)
        start, end = Period(day, day).bounds(self.tz)
        now = to_ts(self.clock.now())
        sections: list[dict[str, Any]] = []

        def add(key: str, items: list[dict[str, Any]]) -> None:
            if items:
                sections.append({"key": key, "count": len(items), "items": items})

        def order(row: Any, **extra: Any) -> dict[str, Any]:
            amount = row["amount_cents"]
            return {"ref": f"order:{row['platform']}:{row['order_no']}", "order_no": row["order_no"],
                    "platform": row["platform"], "shop": row["shop"],
                    "amount": None if amount is None else yuan(amount), **extra}

        add("refunds_opened", [order(r, status=r["status"]) for r in await self.store.refunds_opened(start, end)])
        breaches, near = await self._shipping_cases(start, end, now)
        add("shipping_breaches", breaches)
        add("shipping_near_misses", near)
        add("large_unpaid_closed", [order(r) for r in await self.store.closed_unpaid(start, end, self.large_unpaid_cents)])
        unshipped_s = int(self.book.defaults.seconds("unshipped") * self.stuck_unshipped_factor)
        add("stuck_orders", [order(r, status=r["status"]) for r in
                             await self.store.stuck_orders(end, self.stuck_unpaid_s, unshipped_s)])
        add("unclaimed_reminders", [
            {"ref": f"reminder:{r['id']}", "rule": r["rule"], "stage": r["stage"], "state": r["state"],
             "order_no": r["order_no"], "platform": r["platform"], "shop": r["shop"],
             "amount": None if r["amount_cents"] is None else yuan(r["amount_cents"])}
            for r in await self.store.unclaimed_reminders(start, end)])
        add("handover_open", [
            {"ref": f"handover:{r['id']}", "occurrence": r["occurrence"], "text": r["text"], "kind": r["kind"],
             "urgent": bool(r["urgent"]), "order_no": r["order_no"]}
            for r in await self.store.open_handover_items(end)])
        missed = await self._claims_missed(day, start, end)
        return {"day": day.isoformat(), "sections": sections, "claims_missed": missed,
                "empty": not sections and not missed}

    async def _claims_missed(self, day: date, start: int, end: int) -> list[dict[str, Any]]:
        """Per claim standard: yesterday's reminders that missed it (the nudged ones included) —
        the digest's count instead of a page per miss."""
        stds = [s for s in self.standards if s.metric == "payment_claim" and s.kind == "within"]
        if not stds:
            return []
        measured, _ = await self.measure(Period(day, day))
        obs = _by_metric(measured.obs).get("payment_claim", [])
        nudged = await self.store.nudged_between(start, end)
        out = []
        for std in stds:
            good, n = judge(std, obs)
            if n - good > 0:
                out.append({"standard": std.id, "name": std.name, "missed": n - good, "n": n,
                            "within_minutes": std.within_minutes, "nudged": nudged})
        return out

    # --- when the scheduled sends are due (restart-safe: recorded in kpi_sent) -------------------

    async def morning_review_due(self, now: datetime | None = None) -> date | None:
        """The day to review when the morning review is due now and not sent yet."""
        last = await self.store.last_sent("morning_review")
        return morning_review_due(self.book.shifts, self.tz, now or self.clock.now(),
                                  date.fromisoformat(last) if last else None)

    async def monday_pack_due(self, now: datetime | None = None, lead_minutes: int = 30) -> date | None:
        last = await self.store.last_sent("monday_pack")
        return monday_pack_due(self.book.shifts, self.tz, now or self.clock.now(),
                               date.fromisoformat(last) if last else None, lead_minutes)

    async def baseline(self, now: datetime | None = None) -> bool:
        """On a database that never sent a review or a pack (a fresh install): mark yesterday's
        review and this week's pack as done, so the first ones are about days the bot was running.
        True when it did so; afterwards (restarts) nothing changes and missed sends catch up."""
        if await self.store.last_sent("morning_review") or await self.store.last_sent("monday_pack"):
            return False
        today = (now or self.clock.now()).astimezone(self.tz).date()
        at = to_ts(now or self.clock.now())
        await self.store.claim_send("morning_review", (today - timedelta(days=1)).isoformat(), at)
        await self.store.claim_send("monday_pack", week_start(today).isoformat(), at)
        return True

    async def claim_send(self, kind: str, key: date) -> bool:
        """Record before sending; False when this one was already sent (at most once, across restarts)."""
        return await self.store.claim_send(kind, key.isoformat(), to_ts(self.clock.now()))

    async def _shipping_cases(self, start: int, end: int, now: int) -> tuple[list, list]:
        breaches, near = [], []
        for r in await self.store.shipping_cases(start, end, now, self.near_miss_s):
            item = {"ref": f"order:{r['platform']}:{r['order_no']}", "order_no": r["order_no"],
                    "platform": r["platform"], "shop": r["shop"], "deadline": r["deadline"],
                    "shipped_at": r["shipped_at"],
                    "amount": None if r["amount_cents"] is None else yuan(r["amount_cents"])}
            late = r["shipped_at"] is None or r["shipped_at"] > r["deadline"]
            (breaches if late else near).append(item)
        return breaches, near

    # --- Monday pack ---------------------------------------------------------------------------

    async def monday_pack(self, monday: date | None = None) -> dict[str, Any]:
        """Data for the Monday meeting (seed: 每周一例会): last week's report, the standards over
        the last 4 weeks, per-day 催付 figures, claim times per shift, and one page per person."""
        monday = monday or week_start(self.today())
        last = monday - timedelta(days=7)
        week = Period(last, monday - timedelta(days=1))
        report = await self.report(week)
        mondays, data = await self.weekly(last)
        measured: Measured = data["measured"]
        wc: WorkClock = data["wc"]
        week_start_ts, week_end_ts = week.bounds(self.tz)
        days = [last + timedelta(days=i) for i in range(7)]
        per_day = {d.isoformat(): {"pushed": 0, "paid": 0, "cents": 0} for d in days}
        for row in measured.payment_rows:
            key = wc.local_day(row["push"]).isoformat()
            if key in per_day:
                per_day[key]["pushed"] += 1
                per_day[key]["paid"] += row["paid"]
                per_day[key]["cents"] += row["cents"]
        claim_by_shift: dict[str, list[float]] = defaultdict(list)
        for row in measured.claim_rows:
            if week_start_ts <= row["push"] < week_end_ts and row["claim_s"] is not None and row["shift"]:
                claim_by_shift[row["shift"]].append(row["claim_s"] / 60)
        people = await self.store.people()
        pages = {}
        for key, figures in report["breakdowns"].get("person", {}).items():
            tg_id = int(key)
            own = []
            for s in report["standards"]:
                if "person" not in s["scope"]:
                    continue
                mine = s.get("by_person", {}).get(key)
                own.append({"id": s["id"], "name": s["name"], "target": s["target"],
                            "achieved": mine["achieved"] if mine else None, "n": mine["n"] if mine else 0,
                            "met": mine["met"] if mine else None})
            pages[tg_id] = {"name": people.get(tg_id, {}).get("name", key), "figures": figures, "standards": own}
        return {
            "week": {"from": week.first.isoformat(), "to": week.last.isoformat()},
            "report": report,
            "weeks": [m.isoformat() for m in mondays],
            "standards_weekly": [
                {"id": std.id, "name": std.name, "target": std.target_percent, "direction": std.direction,
                 "achieved": [r["achieved"] for r in data["results"][std.id]]}
                for std in self.standards
            ],
            "payment_per_day": [{"day": d, "pushed": v["pushed"], "paid": v["paid"],
                                 "rate": percent(v["paid"], v["pushed"]), "recovered_amount": yuan(v["cents"])}
                                for d, v in per_day.items()],
            "claim_minutes_by_shift": {k: sorted(v) for k, v in sorted(claim_by_shift.items())},
            "people": pages,
            "suggestions": [s for s in (suggest(std, data["results"][std.id], data["obs"], wc)
                                        for std in self.standards) if s],
        }


def suggest(std: Standard, weeks: list[dict[str, Any]], obs: list[Obs], wc: WorkClock) -> dict[str, Any] | None:
    """One revision per standard (seed: 制定→评估→实施→修订): met with a wide margin every week of the
    look-back → tighten (a target half-way to the worst week); missed every week → look at the
    cause: the shift and the local hours with the most misses."""
    if std.target_percent is None or len(weeks) < LOOKBACK_WEEKS or any(w["n"] == 0 for w in weeks):
        return None
    margins = [std.margin(w["achieved"]) for w in weeks]
    if all(m is not None and m >= WIDE_MARGIN_PP for m in margins):
        worst = min(margins)
        step = round(worst / 2)
        new = std.target_percent + step if std.direction == "at_least" else std.target_percent - step
        new = max(0.0, min(100.0, new))
        if new == std.target_percent:
            return None
        return {"standard": std.id, "action": "tighten", "current_target": std.target_percent,
                "suggested_target": new, "worst_margin_pp": round(worst, 1)}
    if all(w["met"] is False for w in weeks):
        by_shift = misses_by(std, obs, "shift", wc)
        by_hour = misses_by(std, obs, "hour", wc)
        hours = sorted(by_hour.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        return {"standard": std.id, "action": "investigate",
                "worst_shift": max(by_shift, key=lambda k: by_shift[k]) if by_shift else None,
                "misses_by_shift": by_shift, "worst_hours": [h for h, _ in hours],
                "misses_by_hour": dict(sorted(by_hour.items()))}
    return None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _per_minute(seconds: int) -> float:
    return seconds / 60


@dataclass(frozen=True)
class _Waits:
    """How long open waits have run by `now`, from their first pushes (shift hours or wall clock)."""

    wc: WorkClock
    now: int

    def of(self, pushes: Any, hours: str) -> list[int]:
        if hours == "work":
            return self.wc.working_since(pushes, self.now)
        return [self.now - int(p) for p in pushes]


def _judged(std: Standard, groups: Groups, waits: _Waits, level: str | None) -> dict[Any, tuple[int, int]]:
    """(good, n) per group of a level (None: the team) for a standard on a reminder metric, from the
    daily groups (open claim waits worked out from their pushes); keys with no observation are absent."""
    person = PERSON[std.metric]
    key = None if level is None else (person if level == "person" else level)
    out: dict[Any, tuple[int, int]] = {}
    if std.metric == "payment_claim":
        hours = "work" if std.hours == "shift" else "wall"
        done, void = groups.values(f"pc_done_{hours}_v", key), groups.values(f"pc_void_{hours}_v", key)
        pending = {k: waits.of(pushes, hours) for k, pushes in groups.values("open_push_v", key).items()}
        limit = (std.within_minutes or 0) * 60
        for k in set(done) | set(void) | set(pending):
            out[k] = daily.within_counts(done.get(k, daily.EMPTY), void.get(k, daily.EMPTY), pending.get(k, []), limit)
    else:
        names = ["decided", "paid"] if std.metric == "payment_success" else ["warned", "saved"]
        for k, (n, good) in groups.by(key, names).items():
            if n:
                out[k] = (good, n)
    if key is not None:
        out.pop(None, None)
    return out


def _add_late(out: dict[str, Any], obs: list[Obs], wc: WorkClock) -> None:
    """Shipping lateness per day and per shop, into the breakdowns."""
    late: dict[str, dict[str, Any]] = {}
    for o in obs:
        if o.metric == "shipping_late":
            for level in ("day", "shop"):
                key = f"{level}:{wc.local_day(o.at).isoformat() if level == 'day' else o.shop}"
                entry = late.setdefault(key, {"due": 0, "late": 0})
                entry["due"] += o.weight
                entry["late"] += o.flagged
    for key, entry in late.items():
        level, name = key.split(":", 1)
        out.setdefault(level, {}).setdefault(name, {}).update(
            shipping_due=entry["due"], shipping_late=entry["late"], late_rate=percent(entry["late"], entry["due"]))


def _by_metric(obs: list[Obs]) -> dict[str, list[Obs]]:
    grouped: dict[str, list[Obs]] = defaultdict(list)
    for o in obs:
        grouped[o.metric].append(o)
    return grouped


def _scoped(obs: list[Obs], scope: str) -> list[Obs]:
    if scope == "team":
        return obs
    level, _, value = scope.partition(":")
    if level == "person":
        return [o for o in obs if str(o.person) == value]
    if level == "shift":
        return [o for o in obs if o.shift == value]
    if level == "shop":
        return [o for o in obs if o.shop == value]
    return obs


def _scoped_rows(rows: list[dict[str, Any]], scope: str) -> list[dict[str, Any]]:
    if scope == "team":
        return rows
    level, _, value = scope.partition(":")
    return [r for r in rows if str(r.get(level)) == value]


def _row_key(row: dict[str, Any], level: str, wc: WorkClock) -> Any:
    return row.get(level)


def _may_see(viewer: Viewer | None, person: Any) -> bool:
    return viewer is None or viewer.supervisor or str(person) == str(viewer.tg_id)
