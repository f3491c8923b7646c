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
Days are built from facts read without the write lock and stored only if the facts' generation
(bumped by every change of a fact, in any process) is unchanged, so two processes (the bot and
`kefu report kpi`) never store a day from facts another one just replaced, and nobody's writes
wait while a year of days is read and built.

Medians and P90 stay exact (the merged values of the groups, the rules of bot/kpi/stats.py).
This module holds the logic; its SQL is in bot/kpi/readmodel_store.py (the read model's tables) and
bot/kpi/store.py (the reads of other features' records).
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import date, datetime, time, timedelta

from bot.db import Database
from bot.kpi.daily import Groups, build
from bot.kpi.facts import FACT_COLUMNS, derive
from bot.kpi.readmodel_store import ReadModelStore
from bot.kpi.store import DEADLINE_REACH, SLOT, KpiStore
from bot.kpi.worktime import WorkClock
from bot.reminders import RuleBook

VERSION = "1"
#: Builds of missing days from facts read without the write lock before one runs under it.
OPTIMISTIC_TRIES = 3
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
        self.tables = ReadModelStore(db, store)
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
        if await self.tables.config() != want:
            await self.tables.reset(want)

    async def _sync_chunk(self, now: int) -> bool:
        """Recompute up to CHUNK dirty reminders; False when there were none."""
        if not await self.tables.take_dirty(CHUNK):
            return False
        await self._recompute(now)
        return True

    async def _sync_unsettled(self, now: int) -> None:
        """Facts that depend on the clock (催付 undecided, warning before its deadline): recomputed."""
        await self.tables.take_unsettled()
        await self._recompute(now)

    async def _recompute(self, now: int) -> None:
        """Derive the facts of the reminders in the work set; store those that changed and drop
        the stored days they belonged to or now belong to. The work set's dirty marks are deleted
        only with that store (also when none changed, or a marked reminder no longer exists): if
        deriving fails, the exception goes up (the report fails loudly, as the in-memory reference
        with the same `derive` would) and the marks stay, so the next sync retries them."""
        reminders, actions, old = await self.tables.work()
        changed: list[tuple] = []
        days: set[str] = set()
        if reminders:
            facts = await self._compute(reminders, actions, now)
            changed = [f for f in facts if old.get(f[0]) != f[1:]]
            day = FACT_COLUMNS.index("day")
            days = {f[1 + day] for f in changed} | {old[f[0]][day] for f in changed if f[0] in old}
            days.discard(None)
        await self.tables.store_facts(changed, days)
        await self.tables.clear_work()

    async def _compute(self, reminders: list, actions: dict, now: int) -> list[tuple]:
        """The facts of `reminders`, derived in a worker thread (the step between taking the work
        set and storing its facts)."""
        return await asyncio.to_thread(self._derive_all, reminders, actions, now)

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
        """Drop the days changed orders can reach; store the missing closed days of [start, end).
        The missing days are read and computed without the write lock (a grouped query over the
        orders of the span) and stored only if no order changed meanwhile and no process dropped
        days (the shipping generation), else again; after OPTIMISTIC_TRIES changed attempts, the
        read and computation run inside the transaction."""
        for _ in range(OPTIMISTIC_TRIES):
            await self._take_ship_changes()
            stamp = await self.tables.ship_stamp()
            plan = await self._ship_plan(start, end, now)
            if plan is None:
                return
            async with self.tables.transaction() as conn:
                if await self.tables.orders_unchanged_since(stamp):
                    await self.tables.store_ship_days(conn, *plan)
                    return
        await self._take_ship_changes()
        # read, compute and store in one write transaction: no change can commit in between (a
        # change committed after it marks the day dirty again)
        async with self.tables.transaction() as conn:
            plan = await self._ship_plan(start, end, now)
            if plan is not None:
                await self.tables.store_ship_days(conn, *plan)

    async def _take_ship_changes(self) -> None:
        reach = max(int(t.seconds("unshipped")) for t, _, _ in self.book.groups()) + 3600
        async with self.tables.transaction() as conn:
            hours = await self.tables.take_ship_changes(conn)
            stale: set[str] = set()
            for hour in hours:
                day, last = self._local_day(hour * 3600), self._local_day(hour * 3600 + reach)
                while day <= last:
                    stale.add(day.isoformat())
                    day += timedelta(days=1)
            if stale:
                await self.tables.drop_ship_days(conn, stale)

    async def _ship_plan(self, start: int, end: int, now: int) -> tuple[list[str], int, list[tuple]] | None:
        """(missing closed days, now, their rows) for store_ship_days, or None when none is missing."""
        first, last = self._local_day(start), self._local_day(end - 1)
        stored = await self.tables.ship_days_stored(first.isoformat(), last.isoformat())
        missing = []
        day = first
        while day <= last:
            if self._day_bounds(day)[1] <= now and day.isoformat() not in stored:
                missing.append(day)
            day += timedelta(days=1)
        if not missing:
            return None
        span_start, span_end = self._day_bounds(missing[0])[0], self._day_bounds(missing[-1])[1]
        rows = await self._ship_rows(span_start, span_end, span_end)
        keep = {d.isoformat() for d in missing}
        return ([d.isoformat() for d in missing], now,
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
        rows = [(r[0], r[1], r[2] or None, r[3], r[4], r[5])
                for r in await self.tables.ship_daily(first.isoformat(), last.isoformat())]
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
            if await self._missing_days(first, last):
                live = await self._build_days(first, last)
            if not read:
                return Groups(live)
            rows = await self.tables.daily(first.isoformat(), last.isoformat())
        return Groups(rows + live)

    async def _missing_days(self, first: date, last: date) -> list[date]:
        stored = await self.tables.daily_days(first.isoformat(), last.isoformat())
        return [first + timedelta(days=i) for i in range((last - first).days + 1)
                if (first + timedelta(days=i)).isoformat() not in stored]

    async def _build_days(self, first: date, last: date) -> list[tuple]:
        """Build the missing days of [first, last] from the facts; store those with no fact
        depending on the clock; return the rows of the others (used live, not stored).

        The facts are read and the days built without the write lock (a year of days is a long
        read and build: nobody's writes wait for it); the days are stored in a short transaction
        only if no process changed a fact meanwhile (the facts' generation), else built again.
        After OPTIMISTIC_TRIES changed attempts, the read and build run inside the transaction."""
        for _ in range(OPTIMISTIC_TRIES):
            generation = await self.tables.facts_generation()
            built = await self._build(first, last)
            if built is None:
                return []
            wanted, keep, live, complete = built
            async with self.tables.transaction() as conn:
                if await self.tables.facts_generation() == generation:
                    await self.tables.store_daily(conn, wanted, keep, complete)
                    return live
        # a fact written by another process either came before (and is read) or after (and drops
        # the day again)
        async with self.tables.transaction() as conn:
            built = await self._build(first, last)
            if built is None:
                return []
            wanted, keep, live, complete = built
            await self.tables.store_daily(conn, wanted, keep, complete)
        return live

    async def _build(self, first: date, last: date) -> tuple[set[str], list, list, set[str]] | None:
        """(days wanted, rows to store, rows used live, days complete) of the missing days, or None."""
        missing = await self._missing_days(first, last)
        if not missing:
            return None
        span = self._day_bounds(missing[0])[0], self._day_bounds(missing[-1])[1]
        wanted = {d.isoformat() for d in missing}
        facts = [f for f in await self.tables.facts_pushed(*span) if f[0] in wanted]
        unsettled = {f[0] for f in facts if not f[-1]}
        rows = await asyncio.to_thread(build, (tuple(f)[:-1] for f in facts))
        keep = [r for r in rows if r[0] not in unsettled]
        live = [r for r in rows if r[0] in unsettled]
        return wanted, keep, live, wanted - unsettled


__all__ = ["DEADLINE_REACH", "PERSON", "ReadModel", "fingerprint"]
