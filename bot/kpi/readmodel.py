"""The KPI read model (migration 0012): stored per-reminder facts and daily shipping totals, kept
exact, and the report's figures aggregated from them in SQL.

Kept current, before every read (`sync`):
- kpi_reminder_facts: one row per reminder (bot/kpi/facts.py `derive`, the same definition the
  in-memory measures use). Triggers mark a reminder dirty when it, its events, its pushes or its
  order's shop/amount/payment/shipping change; a sync recomputes the dirty ones and every fact still
  depending on the clock (unclaimed and open, 催付 undecided within 72 h, warning before its
  deadline). A restart loses nothing: the dirty marks are rows.
- kpi_ship_daily: shipping lateness per closed shop-local day × shop × shift. Triggers on orders
  note the hour each changed order's deadline counts from; a sync drops the days those can reach
  and recomputes missing closed days of the asked range in one grouped query. Today is never stored.
- A change of shifts, time zone or shipping thresholds (kpi_read_model 'config') drops everything.

Medians and P90 stay exact: SQL window functions pick the values at the needed ranks per group
(row_number over the group ordered by the value), the same nearest-rank / mid-pair rules as
bot/kpi/stats.py.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.db import Database
from bot.kpi.facts import FACT_COLUMNS, derive
from bot.kpi.standards import Standard
from bot.kpi.store import DEADLINE_REACH, SLOT, KpiStore
from bot.kpi.worktime import WorkClock
from bot.reminders import RuleBook

VERSION = "1"
_P90_RANK = "max(1, CAST(0.9 * c AS INTEGER) + (0.9 * c > CAST(0.9 * c AS INTEGER)))"
#: person column of each reminder metric (the claimer, or the credited person for 催付 success)
PERSON = {"payment_claim": "claimer", "payment_success": "credit", "warning_saved": "claimer"}
LEVEL_COLUMN = {"team": "'team'", "day": "day", "week": "week", "shift": "shift", "shop": "shop", "person": "claimer"}


def fingerprint(book: RuleBook) -> str:
    parts = [VERSION, str(book.tz), repr(tuple(book.shifts)),
             repr([(t.seconds("unshipped"), cond, params) for t, cond, params in book.groups()])]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def scope_sql(scope: str, person_column: str) -> tuple[str, tuple]:
    if scope == "team":
        return "", ()
    level, _, value = scope.partition(":")
    column = {"person": person_column, "shift": "shift", "shop": "shop"}.get(level)
    if column is None:
        return "", ()
    if level == "person":
        return f" AND CAST({column} AS TEXT) = ?", (value,)
    return f" AND {column} = ?", (value,)


def median_of(values: dict[int, Any], count: int) -> Any:
    """values: rank (1-based) → value; the mid value, or the mean of the mid pair (stats.median)."""
    if count % 2:
        return values[(count + 1) // 2]
    return (values[count // 2] + values[count // 2 + 1]) / 2


def p90_rank(count: int) -> int:
    import math

    return max(1, math.ceil(0.9 * count))


class ReadModel:
    def __init__(self, db: Database, book: RuleBook, store: KpiStore) -> None:
        self.db = db
        self.book = book
        self.tz = book.tz
        self.store = store
        self._lock = asyncio.Lock()

    # --- keeping it current --------------------------------------------------------------------

    async def sync(self, start: int, end: int, now: int) -> None:
        """Bring the facts and the closed days of [start, end) up to date (serialised per process)."""
        async with self._lock:
            await self._check_config()
            await self._sync_facts(now)
            await self._sync_ship_days(start, end, now)

    async def _check_config(self) -> None:
        want = fingerprint(self.book)
        row = await self.db.fetchone("SELECT value FROM kpi_read_model WHERE key = 'config'")
        if row is not None and row[0] == want:
            return
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM kpi_reminder_facts")
            await conn.execute("INSERT OR IGNORE INTO kpi_dirty_reminders (reminder_id) SELECT id FROM reminders")
            await conn.execute("DELETE FROM kpi_ship_daily")
            await conn.execute("DELETE FROM kpi_ship_days")
            await conn.execute("DELETE FROM kpi_ship_dirty")
            await conn.execute("INSERT OR REPLACE INTO kpi_read_model (key, value) VALUES ('config', ?)", (want,))

    async def _sync_facts(self, now: int) -> None:
        async with self.db.transaction() as conn:
            await conn.execute("CREATE TEMP TABLE IF NOT EXISTS kpi_work (id INTEGER PRIMARY KEY)")
            await conn.execute("DELETE FROM temp.kpi_work")
            await conn.execute("INSERT OR IGNORE INTO temp.kpi_work (id) SELECT reminder_id FROM kpi_dirty_reminders")
            await conn.execute("INSERT OR IGNORE INTO temp.kpi_work (id)"
                               " SELECT reminder_id FROM kpi_reminder_facts WHERE settled = 0")
            # consumed now: a change from here on marks the reminder dirty again for the next sync
            await conn.execute("DELETE FROM kpi_dirty_reminders")
        cond = "r.id IN (SELECT id FROM temp.kpi_work)"
        reminders = await self.store.reminders_where(cond, ())
        if reminders:
            actions = await self.store.reminder_actions_where(cond, ())
            facts = await asyncio.to_thread(self._derive_all, reminders, actions, now)
            marks = ", ".join("?" * (len(FACT_COLUMNS) + 1))
            async with self.db.transaction() as conn:
                await conn.executemany(
                    f"INSERT OR REPLACE INTO kpi_reminder_facts (reminder_id, {', '.join(FACT_COLUMNS)})"
                    f" VALUES ({marks})", facts)
        await self.db.execute("DELETE FROM temp.kpi_work")

    def _derive_all(self, reminders: list, actions: dict, now: int) -> list[tuple]:
        pushes = [r.first_push for r in reminders if r.first_push is not None]
        wc = WorkClock(self.book.shifts, self.tz, min(pushes, default=now), max(now, max(pushes, default=now)))
        return [(r.id, *derive(wc, r, actions.get(r.id, ()), now)) for r in reminders]

    def _day_bounds(self, day: date) -> tuple[int, int]:
        start = datetime.combine(day, time(0), self.tz)
        end = datetime.combine(day + timedelta(days=1), time(0), self.tz)
        return int(start.timestamp()), int(end.timestamp())

    def _local_day(self, ts: int) -> date:
        return datetime.fromtimestamp(ts, self.tz).date()

    async def _sync_ship_days(self, start: int, end: int, now: int) -> None:
        reach = max(int(t.seconds("unshipped")) for t, _, _ in self.book.groups()) + 3600
        async with self.db.transaction() as conn:
            async with conn.execute("SELECT hour FROM kpi_ship_dirty") as cursor:
                hours = [row[0] for row in await cursor.fetchall()]
            await conn.execute("DELETE FROM kpi_ship_dirty")
            stale: set[str] = set()
            for hour in hours:
                day, last = self._local_day(hour * 3600), self._local_day(hour * 3600 + reach)
                while day <= last:
                    stale.add(day.isoformat())
                    day += timedelta(days=1)
            if stale:
                await conn.executemany("DELETE FROM kpi_ship_days WHERE day = ?", [(d,) for d in stale])
                await conn.executemany("DELETE FROM kpi_ship_daily WHERE day = ?", [(d,) for d in stale])
        first, last = self._local_day(start), self._local_day(end - 1)
        stored = {r[0] for r in await self.db.fetchall(
            "SELECT day FROM kpi_ship_days WHERE day >= ? AND day <= ?", (first.isoformat(), last.isoformat()))}
        missing = []
        day = first
        while day <= last:
            if self._day_bounds(day)[1] <= now and day.isoformat() not in stored:
                missing.append(day)
            day += timedelta(days=1)
        if not missing:
            return
        span_start, span_end = self._day_bounds(missing[0])[0], self._day_bounds(missing[-1])[1]
        rows = await self._ship_rows(span_start, span_end, span_end)
        async with self.db.transaction() as conn:
            await conn.executemany("INSERT OR REPLACE INTO kpi_ship_days (day, at) VALUES (?, ?)",
                                   [(d.isoformat(), now) for d in missing])
            await conn.executemany("DELETE FROM kpi_ship_daily WHERE day = ?", [(d.isoformat(),) for d in missing])
            keep = {d.isoformat() for d in missing}
            await conn.executemany(
                "INSERT INTO kpi_ship_daily (day, shop, shift, due, late, unknown) VALUES (?, ?, ?, ?, ?, ?)",
                [(d, shop, shift or "", *v) for (d, shop, shift), v in rows.items() if d in keep])

    async def _ship_rows(self, start: int, end: int, now: int) -> dict[tuple[str, str, str | None], list[int]]:
        """(day, shop, shift) → [due, late, unknown] for deadlines in [start, min(end, now))."""
        slots = await self.store.shipping_slots(start, end, now)
        wc = WorkClock(self.book.shifts, self.tz, start, end)
        out: dict[tuple[str, str, str | None], list[int]] = {}
        for shop, slot, n, n_late, n_unknown in slots:
            key = (wc.local_day(slot).isoformat(), shop, wc.shift_at(slot + SLOT // 2))
            acc = out.setdefault(key, [0, 0, 0])
            acc[0] += n
            acc[1] += n_late
            acc[2] += n_unknown
        return out

    # --- reading ---------------------------------------------------------------------------------

    async def ship_days(self, start: int, end: int, now: int) -> list[tuple[str, str, str | None, int, int, int]]:
        """(day, shop, shift, due, late, unknown) for the days of [start, end): stored closed days,
        today computed live."""
        first, last = self._local_day(start), self._local_day(end - 1)
        rows = [(r[0], r[1], r[2] or None, r[3], r[4], r[5]) for r in await self.db.fetchall(
            "SELECT day, shop, shift, due, late, unknown FROM kpi_ship_daily WHERE day >= ? AND day <= ?",
            (first.isoformat(), last.isoformat()))]
        day = first
        while day <= last:
            a, b = self._day_bounds(day)
            if b > now and a < now:  # the open day
                rows += [(d, shop, shift, *v) for (d, shop, shift), v in (await self._ship_rows(a, b, now)).items()]
            day += timedelta(days=1)
        return rows

    async def totals(self, start: int, end: int) -> dict[str, int]:
        row = await self.db.fetchone(
            "SELECT count(*), coalesce(sum(escalated), 0), coalesce(sum(snoozed), 0),"
            " sum(pay IN ('open', 'decided')), sum(pay = 'before'), sum(CASE WHEN pay IN ('open', 'decided') THEN acted END),"
            " sum(pay = 'open'), sum(pay = 'decided' AND paid = 1), sum(CASE WHEN pay = 'decided' THEN cents END),"
            " sum(CASE WHEN pay = 'decided' AND acted = 1 THEN cents END), sum(pay = 'decided' AND acted = 0),"
            " sum(pay = 'decided' AND acted = 0 AND paid = 1), sum(pay = 'decided' AND acted = 1 AND paid = 1),"
            " sum(warn = 'judged'), sum(warn = 'judged' AND warn_ok = 1), sum(warn = 'open')"
            " FROM kpi_reminder_facts WHERE push >= ? AND push < ?",
            (start, end),
        )
        names = ("counted", "escalated", "snoozed", "pushed", "paid_before_push", "acted", "open", "paid_after",
                 "recovered_cents", "recovered_acted_cents", "unacted", "unacted_paid", "acted_paid", "warned",
                 "saved", "warn_open")
        return {name: int(value or 0) for name, value in zip(names, row)}

    async def ranked(self, start: int, end: int, column: str, level: str, *, where: str = "",
                     params: tuple = ()) -> dict[Any, tuple[int, dict[int, int]]]:
        """Per group of `level`: (count of non-null `column`, {rank: value} at the median and P90 ranks)."""
        key = LEVEL_COLUMN[level]
        rows = await self.db.fetchall(
            f"SELECT k, v, rn, c FROM (SELECT {key} AS k, {column} AS v,"
            f" row_number() OVER (PARTITION BY {key} ORDER BY {column}) AS rn,"
            f" count(*) OVER (PARTITION BY {key}) AS c"
            f" FROM kpi_reminder_facts WHERE push >= ? AND push < ? AND {column} IS NOT NULL{where})"
            f" WHERE rn = (c + 1) / 2 OR rn = c / 2 + 1 OR rn = {_P90_RANK}",
            (start, end, *params),
        )
        out: dict[Any, tuple[int, dict[int, int]]] = {}
        for k, v, rn, c in rows:
            out.setdefault(k, (c, {}))[1][rn] = v
        return out

    async def counts(self, start: int, end: int, level: str, *, where: str = "", params: tuple = ()
                     ) -> dict[Any, dict[str, int]]:
        """Per group: reminders, claimed, done (claim rows) and 催付 pushed/paid/cents (payment rows,
        grouped by the credited person at level person)."""
        key = LEVEL_COLUMN[level]
        out: dict[Any, dict[str, int]] = defaultdict(lambda: {"reminders": 0, "claimed": 0, "pushed": 0, "paid": 0,
                                                              "cents": 0})
        for k, n, claimed in await self.db.fetchall(
                f"SELECT {key}, count(*), count(claim_s) FROM kpi_reminder_facts"
                f" WHERE push >= ? AND push < ?{where} GROUP BY 1", (start, end, *params)):
            out[k]["reminders"] += n
            out[k]["claimed"] += claimed
        return out

    async def payment_counts(self, start: int, end: int, level: str, *, where: str = "", params: tuple = ()
                             ) -> dict[Any, tuple[int, int, int]]:
        key = "credit" if level == "person" else LEVEL_COLUMN[level]
        return {r[0]: (r[1], r[2], r[3]) for r in await self.db.fetchall(
            f"SELECT {key}, count(*), sum(paid), sum(cents) FROM kpi_reminder_facts"
            f" WHERE push >= ? AND push < ? AND pay = 'decided'{where} GROUP BY 1", (start, end, *params))}

    async def judged(self, start: int, end: int, std: Standard, level: str, scope: str) -> dict[Any, tuple[int, int]]:
        """(good, n) per group for a standard on a reminder metric; groups with a NULL key are left
        out below the team level (as in measures.by_level)."""
        person = PERSON[std.metric]
        key = {"team": "'team'", "shift": "shift", "shop": "shop", "person": person}[level]
        where, params = scope_sql(scope, person)
        if std.metric == "payment_claim":
            dur = "pc_work" if std.hours == "shift" else "pc_wall"
            limit = (std.within_minutes or 0) * 60
            sql = (f"SELECT {key}, coalesce(sum(pc_end = 'done' AND {dur} <= ?), 0),"
                   f" coalesce(sum(pc_end = 'done' OR {dur} > ?), 0) FROM kpi_reminder_facts"
                   f" WHERE push >= ? AND push < ? AND pc_end IS NOT NULL{where}")
            args: tuple = (limit, limit, start, end, *params)
        else:
            cond, flag = ("pay = 'decided'", "paid") if std.metric == "payment_success" else ("warn = 'judged'", "warn_ok")
            sql = (f"SELECT {key}, coalesce(sum({flag}), 0), count(*) FROM kpi_reminder_facts"
                   f" WHERE push >= ? AND push < ? AND {cond}{where}")
            args = (start, end, *params)
        if level != "team":
            sql += f" AND {key} IS NOT NULL"
        sql += " GROUP BY 1"
        rows = await self.db.fetchall(sql, args)
        if level == "team" and not rows:
            return {}
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}


__all__ = ["DEADLINE_REACH", "ReadModel", "fingerprint", "median_of", "p90_rank", "scope_sql"]
