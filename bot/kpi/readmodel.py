"""The KPI read model (migration 0012): stored per-reminder facts, daily groups and daily shipping
totals, kept exact; the report's figures are aggregated from the day groups.

Kept current, before every read (`sync`):
- kpi_reminder_facts: one row per reminder (bot/kpi/facts.py `derive`, the same definition the
  in-memory measures use). Triggers mark a reminder dirty when it, its events, its pushes or its
  order's shop/amount/payment/shipping change; a sync recomputes the dirty ones and every fact still
  depending on the clock (unclaimed and open, 催付 undecided within 72 h, warning before its
  deadline). A restart loses nothing: the dirty marks are rows.
- kpi_daily: the facts of a day grouped (bot/kpi/daily.py), with the exact values behind medians
  and P90 as sorted arrays; a changed fact drops its day, rebuilt by the next report.
- kpi_ship_daily: shipping lateness per closed shop-local day × shop × shift. A trigger on orders
  notes the hour each changed order's deadline counts from (new orders: those above the rowid seen
  last); a sync drops the days those can reach and recomputes the missing closed days of the asked
  range in one grouped query. Today is never stored.
- A change of shifts, time zone or shipping thresholds (kpi_read_model 'config') drops everything.
Days are built and stored inside one write transaction with the reads they come from, so two
processes (the bot and `kefu report kpi`) never store a day from facts another one just replaced.

Medians and P90 stay exact (the merged values of the groups, the rules of bot/kpi/stats.py).
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import date, datetime, time, timedelta

from bot.db import Database
from bot.kpi.daily import COLUMNS, FACT_READ, Groups, build
from bot.kpi.facts import FACT_COLUMNS, derive
from bot.kpi.store import DEADLINE_REACH, SLOT, KpiStore
from bot.kpi.worktime import WorkClock
from bot.reminders import RuleBook

VERSION = "1"
#: dirty reminders recomputed per step (a step holds the shared connection for ~0.1–0.3 s)
CHUNK = 5000
#: person column of each reminder metric (the claimer, or the credited person for 催付 success)
PERSON = {"payment_claim": "claimer", "payment_success": "credit", "warning_saved": "claimer"}


def fingerprint(book: RuleBook) -> str:
    parts = [VERSION, str(book.tz), repr(tuple(book.shifts)),
             repr([(t.seconds("unshipped"), cond, params) for t, cond, params in book.groups()])]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


class ReadModel:
    def __init__(self, db: Database, book: RuleBook, store: KpiStore) -> None:
        self.db = db
        self.book = book
        self.tz = book.tz
        self.store = store
        self._lock = asyncio.Lock()

    # --- keeping it current --------------------------------------------------------------------

    async def sync(self, start: int, end: int, now: int) -> None:
        """Bring the facts and the closed days of [start, end) up to date (serialised per process).
        The dirty reminders are worked off in chunks, so other users of the connection get in
        between (a first fill on a big database takes a while once)."""
        async with self._lock:
            await self._check_config()
            await self._sync_unsettled(now)
            while await self._sync_chunk(now):
                pass
            await self._sync_ship_days(start, end, now)

    async def refresh(self, start: int, end: int, now: int) -> bool:
        """The bot's background upkeep, bounded per call: one chunk of dirty reminders; once none
        is left, the unsettled facts and the days of [start, end). True when it is all current."""
        async with self._lock:
            await self._check_config()
            if await self._sync_chunk(now):
                return False
            await self._sync_unsettled(now)
            await self._sync_ship_days(start, end, now)
        await self.daily(start, end, read=False)
        return True

    async def _check_config(self) -> None:
        want = fingerprint(self.book)
        row = await self.db.fetchone("SELECT value FROM kpi_read_model WHERE key = 'config'")
        if row is not None and row[0] == want:
            return
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM kpi_reminder_facts")
            await conn.execute("DELETE FROM kpi_daily")
            await conn.execute("DELETE FROM kpi_daily_days")
            await conn.execute("INSERT OR IGNORE INTO kpi_dirty_reminders (reminder_id) SELECT id FROM reminders")
            await conn.execute("DELETE FROM kpi_ship_daily")
            await conn.execute("DELETE FROM kpi_ship_days")
            await conn.execute("DELETE FROM kpi_ship_dirty")
            await conn.execute("INSERT OR REPLACE INTO kpi_read_model (key, value) VALUES ('config', ?)", (want,))

    async def _sync_chunk(self, now: int) -> bool:
        """Recompute up to CHUNK dirty reminders; False when there were none."""
        async with self.db.transaction() as conn:
            await conn.execute("CREATE TEMP TABLE IF NOT EXISTS kpi_work (id INTEGER PRIMARY KEY)")
            await conn.execute("DELETE FROM temp.kpi_work")
            cursor = await conn.execute("INSERT INTO temp.kpi_work (id) SELECT reminder_id FROM kpi_dirty_reminders"
                                        " ORDER BY reminder_id LIMIT ?", (CHUNK,))
            if cursor.rowcount == 0:
                return False
            # consumed now: a change from here on marks the reminder dirty again for the next sync
            await conn.execute("DELETE FROM kpi_dirty_reminders WHERE reminder_id IN (SELECT id FROM temp.kpi_work)")
        await self._recompute(now)
        return True

    async def _sync_unsettled(self, now: int) -> None:
        """Facts that depend on the clock (催付 undecided, warning before its deadline): recomputed."""
        async with self.db.transaction() as conn:
            await conn.execute("CREATE TEMP TABLE IF NOT EXISTS kpi_work (id INTEGER PRIMARY KEY)")
            await conn.execute("DELETE FROM temp.kpi_work")
            await conn.execute("INSERT INTO temp.kpi_work (id) SELECT reminder_id FROM kpi_reminder_facts"
                               " WHERE settled = 0")
        await self._recompute(now)

    async def _recompute(self, now: int) -> None:
        """Derive the facts of the reminders in temp.kpi_work; store those that changed and drop
        the stored days they belonged to or now belong to."""
        cond = "r.id IN (SELECT id FROM temp.kpi_work)"
        reminders = await self.store.reminders_where(cond, ())
        if reminders:
            actions = await self.store.reminder_actions_where(cond, ())
            old = {r[0]: tuple(r[1:]) for r in await self.db.fetchall(
                f"SELECT reminder_id, {', '.join(FACT_COLUMNS)} FROM kpi_reminder_facts"
                " WHERE reminder_id IN (SELECT id FROM temp.kpi_work)")}
            facts = await asyncio.to_thread(self._derive_all, reminders, actions, now)
            changed = [f for f in facts if old.get(f[0]) != f[1:]]
            day = FACT_COLUMNS.index("day")
            days = {f[1 + day] for f in changed} | {old[f[0]][day] for f in changed if f[0] in old}
            days.discard(None)
            marks = ", ".join("?" * (len(FACT_COLUMNS) + 1))
            async with self.db.transaction() as conn:
                await conn.executemany(
                    f"INSERT OR REPLACE INTO kpi_reminder_facts (reminder_id, {', '.join(FACT_COLUMNS)})"
                    f" VALUES ({marks})", changed)
                await conn.executemany("DELETE FROM kpi_daily_days WHERE day = ?", [(d,) for d in days])
                await conn.executemany("DELETE FROM kpi_daily WHERE day = ?", [(d,) for d in days])
        await self.db.execute("DELETE FROM temp.kpi_work")

    def _derive_all(self, reminders: list, actions: dict, now: int) -> list[tuple]:
        pushes = [r.first_push for r in reminders if r.first_push is not None]
        wc = WorkClock(self.book.shifts, self.tz, min(pushes, default=now), max(now, max(pushes, default=now)))
        out = []
        for r in reminders:
            fact = derive(wc, r, actions.get(r.id, ()), now)
            if fact.pc_end == "open":  # grows with the clock: stored without its durations
                fact = fact._replace(pc_work=None, pc_wall=None)
            out.append((r.id, *fact))
        return out

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
            # orders added since the last sync (rowids only grow: orders are never deleted)
            async with conn.execute("SELECT CAST(value AS INTEGER) FROM kpi_read_model WHERE key = 'orders_seen'") as cursor:
                seen = (await cursor.fetchone() or (0,))[0]
            async with conn.execute(
                    "SELECT DISTINCT COALESCE(ship_by, ship_from, paid_at) / 3600 FROM orders"
                    " WHERE id > ? AND paid_at IS NOT NULL", (seen,)) as cursor:
                hours += [row[0] for row in await cursor.fetchall()]
            async with conn.execute("SELECT max(id) FROM orders") as cursor:
                top = (await cursor.fetchone())[0]
            if top is not None and top > seen:
                await conn.execute("INSERT OR REPLACE INTO kpi_read_model (key, value) VALUES ('orders_seen', ?)",
                                   (str(top),))
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
        # read, compute and store in one write transaction: no change can commit in between (a
        # change committed after it marks the day dirty again)
        async with self.db.transaction() as conn:
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

    async def daily(self, start: int, end: int, *, read: bool = True) -> Groups:
        """The kpi_daily groups of the days of [start, end): stored days read, missing days built
        from the facts (and stored when none of their facts depends on the clock)."""
        first, last = self._local_day(start), self._local_day(end - 1)
        async with self._lock:
            live: list[tuple] = []
            if await self._missing_days("kpi_daily_days", first, last):
                live = await self._build_days(first, last)
            if not read:
                return Groups(live)
            rows = await self.db.fetchall(
                f"SELECT {', '.join(COLUMNS)} FROM kpi_daily WHERE day >= ? AND day <= ?",
                (first.isoformat(), last.isoformat()))
        return Groups([tuple(r) for r in rows] + live)

    async def _missing_days(self, table: str, first: date, last: date) -> list[date]:
        stored = {r[0] for r in await self.db.fetchall(
            f"SELECT day FROM {table} WHERE day >= ? AND day <= ?", (first.isoformat(), last.isoformat()))}
        return [first + timedelta(days=i) for i in range((last - first).days + 1)
                if (first + timedelta(days=i)).isoformat() not in stored]

    async def _build_days(self, first: date, last: date) -> list[tuple]:
        """Build the missing days of [first, last] from the facts; store those with no fact
        depending on the clock; return the rows of the others (used live, not stored)."""
        live: list[tuple] = []
        # read the facts and store the days in one write transaction: a fact written by another
        # process either came before (and is read) or after (and drops the day again)
        async with self.db.transaction() as conn:
            missing = await self._missing_days("kpi_daily_days", first, last)
            if missing:
                span = self._day_bounds(missing[0])[0], self._day_bounds(missing[-1])[1]
                wanted = {d.isoformat() for d in missing}
                facts = [f for f in await self.db.fetchall(
                    f"SELECT {', '.join(FACT_READ)}, settled FROM kpi_reminder_facts WHERE push >= ? AND push < ?",
                    span) if f[0] in wanted]
                unsettled = {f[0] for f in facts if not f[-1]}
                rows = await asyncio.to_thread(build, (tuple(f)[:-1] for f in facts))
                keep = [r for r in rows if r[0] not in unsettled]
                live = [r for r in rows if r[0] in unsettled]
                marks = ", ".join("?" * len(COLUMNS))
                await conn.executemany("DELETE FROM kpi_daily WHERE day = ?", [(d,) for d in wanted])
                await conn.executemany(f"INSERT INTO kpi_daily ({', '.join(COLUMNS)}) VALUES ({marks})", keep)
                await conn.executemany("INSERT OR REPLACE INTO kpi_daily_days (day, at) VALUES (?, ?)",
                                       [(d, 0) for d in wanted - unsettled])
        return live


__all__ = ["DEADLINE_REACH", "PERSON", "ReadModel", "fingerprint"]
