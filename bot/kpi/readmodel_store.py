"""The KPI read model's storage (migration 0012): the only module that writes its tables
kpi_reminder_facts, kpi_daily, kpi_daily_days, kpi_dirty_reminders, kpi_ship_daily, kpi_ship_days,
kpi_ship_dirty and kpi_read_model (the migration's triggers on other features' tables insert the
dirty marks). The logic that keeps them current is bot/kpi/readmodel.py; it reads other features'
records through bot/kpi/store.py (reads only).

Methods taking `conn` run inside the caller's transaction (`transaction()`): the read model reads,
computes and stores some steps atomically. Reads with `self.db` inside such a transaction see it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiosqlite

from bot.db import Database, insert_ignore_sql, insert_replace_sql, staging_table_sql
from bot.kpi.daily import COLUMNS, FACT_READ
from bot.kpi.facts import FACT_COLUMNS
from bot.kpi.store import KpiStore, ReminderRow

#: The reminders one step recomputes: a per-connection scratch table on the write connection (the
#: reader connection does not see it, so the reads of the work set run inside a transaction). `mark`:
#: the number of the dirty mark taken (migration 0014; NULL for the unsettled facts, taken unmarked).
WORK_CREATE, WORK = staging_table_sql("kpi_work", ("id INTEGER PRIMARY KEY", "mark INTEGER"))
IN_WORK = f"r.id IN (SELECT id FROM {WORK})"

FACTS_INSERT = insert_replace_sql("kpi_reminder_facts", ("reminder_id", *FACT_COLUMNS))
DAILY_INSERT = f"INSERT INTO kpi_daily ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
DAILY_DAY_INSERT = insert_replace_sql("kpi_daily_days", ("day", "at"))
SHIP_DAY_INSERT = insert_replace_sql("kpi_ship_days", ("day", "at"))
SETTING = insert_replace_sql("kpi_read_model", ("key", "value"))
#: The dirty marks' counter (migration 0014): bumped by every trigger firing that sets a mark.
MARK_BUMP = "UPDATE kpi_read_model SET value = CAST(value AS INTEGER) + 1 WHERE key = 'mark'"
MARK_NOW = "(SELECT CAST(value AS INTEGER) FROM kpi_read_model WHERE key = 'mark')"
#: Generations (kpi_read_model keys; added at their first bump): 'facts' moves with every store that
#: changes kpi_reminder_facts, so days built from facts read without the write lock are stored only
#: if no fact changed meanwhile (any process); 'ship' moves whenever changed orders' hours are taken
#: (their days dropped), so days planned from orders read before are not stored over the drop.
GENERATION_ADD = insert_ignore_sql("kpi_read_model", ("key", "value"))
GENERATION_BUMP = "UPDATE kpi_read_model SET value = CAST(value AS INTEGER) + 1 WHERE key = ?"
#: (the shipping generation, the newest order's id) as two columns of a SELECT.
SHIP_STAMP = ("coalesce((SELECT CAST(value AS INTEGER) FROM kpi_read_model WHERE key = 'ship'), 0),"
              " coalesce((SELECT max(id) FROM orders), 0)")


class ReadModelStore:
    def __init__(self, db: Database, reads: KpiStore) -> None:
        self.db = db
        self.reads = reads

    def transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        return self.db.transaction()

    # --- configuration ---------------------------------------------------------------------------

    async def config(self) -> str | None:
        row = await self.db.fetchone("SELECT value FROM kpi_read_model WHERE key = 'config'")
        return None if row is None else row[0]

    async def reset(self, config: str) -> None:
        """Drop every stored row, mark every reminder dirty, remember the configuration."""
        async with self.db.transaction() as conn:
            await conn.execute("DELETE FROM kpi_reminder_facts")
            await conn.execute("DELETE FROM kpi_daily")
            await conn.execute("DELETE FROM kpi_daily_days")
            await conn.execute(MARK_BUMP)
            await conn.execute(insert_ignore_sql("kpi_dirty_reminders", ("reminder_id",), select="SELECT id FROM reminders"))
            await conn.execute(f"UPDATE kpi_dirty_reminders SET mark = {MARK_NOW}")  # a sync under way keeps none
            await conn.execute("DELETE FROM kpi_ship_daily")
            await conn.execute("DELETE FROM kpi_ship_days")
            await conn.execute("DELETE FROM kpi_ship_dirty")
            await conn.execute(SETTING, ("config", config))
            await self._bump(conn, "facts")

    # --- reminder facts ----------------------------------------------------------------------------

    async def take_dirty(self, limit: int) -> bool:
        """Copy up to `limit` dirty reminders (with their mark numbers) into the work set; False when
        there were none. The marks stay until `store_facts` stores the facts computed from them: a
        step that fails (an exception, a cancellation, a killed process) leaves them for the next
        sync, and a change meanwhile gives a mark a new number, so that mark survives the store."""
        async with self.db.transaction() as conn:
            await conn.execute(WORK_CREATE)
            await conn.execute(f"DELETE FROM {WORK}")
            cursor = await conn.execute(f"INSERT INTO {WORK} (id, mark) SELECT reminder_id, mark FROM kpi_dirty_reminders"
                                        " ORDER BY reminder_id LIMIT ?", (limit,))
            return cursor.rowcount > 0

    async def take_unsettled(self) -> None:
        """The work set: the facts that depend on the clock (settled = 0)."""
        async with self.db.transaction() as conn:
            await conn.execute(WORK_CREATE)
            await conn.execute(f"DELETE FROM {WORK}")
            await conn.execute(f"INSERT INTO {WORK} (id) SELECT reminder_id FROM kpi_reminder_facts WHERE settled = 0")

    async def work(self) -> tuple[list[ReminderRow], dict[int, list[tuple[int, int, str]]], dict[int, tuple]]:
        """The work set's reminders, their presses and their stored facts (reminder id → fact)."""
        async with self.db.transaction():  # the scratch table lives on the write connection
            reminders = await self.reads.reminders_where(IN_WORK, ())
            if not reminders:
                return [], {}, {}
            actions = await self.reads.reminder_actions_where(IN_WORK, ())
            old = {r[0]: tuple(r[1:]) for r in await self.db.fetchall(
                f"SELECT reminder_id, {', '.join(FACT_COLUMNS)} FROM kpi_reminder_facts"
                f" WHERE reminder_id IN (SELECT id FROM {WORK})")}
        return reminders, actions, old

    async def store_facts(self, facts: Sequence[tuple], days: Iterable[str]) -> None:
        """Store changed facts (reminder id, *fact) and drop the stored days they touch; in the same
        transaction, delete the dirty marks of the work set not set again since they were taken."""
        async with self.db.transaction() as conn:
            await conn.executemany(FACTS_INSERT, facts)
            if facts:
                await self._bump(conn, "facts")
            await conn.execute(f"DELETE FROM kpi_dirty_reminders WHERE EXISTS (SELECT 1 FROM {WORK} w"
                               " WHERE w.id = kpi_dirty_reminders.reminder_id AND w.mark = kpi_dirty_reminders.mark)")
            await conn.executemany("DELETE FROM kpi_daily_days WHERE day = ?", [(d,) for d in days])
            await conn.executemany("DELETE FROM kpi_daily WHERE day = ?", [(d,) for d in days])

    @staticmethod
    async def _bump(conn: aiosqlite.Connection, generation: str) -> None:
        await conn.execute(GENERATION_ADD, (generation, "0"))
        await conn.execute(GENERATION_BUMP, (generation,))

    async def facts_generation(self) -> int:
        """The facts' generation (see GENERATION_BUMP); inside a transaction, as that transaction sees it."""
        row = await self.db.fetchone("SELECT CAST(value AS INTEGER) FROM kpi_read_model WHERE key = 'facts'")
        return 0 if row is None else int(row[0])

    async def clear_work(self) -> None:
        await self.db.execute(f"DELETE FROM {WORK}")

    # --- daily groups --------------------------------------------------------------------------------

    async def daily_days(self, first: str, last: str) -> set[str]:
        """The stored days of kpi_daily in [first, last] (ISO days)."""
        return {r[0] for r in await self.db.fetchall(
            "SELECT day FROM kpi_daily_days WHERE day >= ? AND day <= ?", (first, last))}

    async def daily(self, first: str, last: str) -> list[tuple]:
        return [tuple(r) for r in await self.db.fetchall(
            f"SELECT {', '.join(COLUMNS)} FROM kpi_daily WHERE day >= ? AND day <= ?", (first, last))]

    async def facts_pushed(self, start: int, end: int) -> list[tuple]:
        """(*FACT_READ, settled) of the facts first pushed in [start, end)."""
        return [tuple(r) for r in await self.db.fetchall(
            f"SELECT {', '.join(FACT_READ)}, settled FROM kpi_reminder_facts WHERE push >= ? AND push < ?",
            (start, end))]

    async def store_daily(self, conn: aiosqlite.Connection, days: Iterable[str], rows: Iterable[Sequence[Any]],
                          complete: Iterable[str]) -> None:
        """Replace the groups of `days` by `rows`; record `complete` as stored (in the caller's transaction)."""
        await conn.executemany("DELETE FROM kpi_daily WHERE day = ?", [(d,) for d in days])
        await conn.executemany(DAILY_INSERT, rows)
        await conn.executemany(DAILY_DAY_INSERT, [(d, 0) for d in complete])

    # --- shipping days -------------------------------------------------------------------------------

    async def take_ship_changes(self, conn: aiosqlite.Connection) -> list[int]:
        """The hours (unix hours) the deadlines of changed orders count from: the dirty marks
        (taken) and the orders added since the last call (in the caller's transaction)."""
        async with conn.execute("SELECT hour FROM kpi_ship_dirty") as cursor:
            hours = [row[0] for row in await cursor.fetchall()]
        await conn.execute("DELETE FROM kpi_ship_dirty")
        # orders added since the last sync (ids only grow: orders are never deleted)
        async with conn.execute("SELECT CAST(value AS INTEGER) FROM kpi_read_model WHERE key = 'orders_seen'") as cursor:
            seen = (await cursor.fetchone() or (0,))[0]
        async with conn.execute(
                "SELECT DISTINCT COALESCE(ship_by, ship_from, paid_at) / 3600 FROM orders"
                " WHERE id > ? AND paid_at IS NOT NULL", (seen,)) as cursor:
            hours += [row[0] for row in await cursor.fetchall()]
        async with conn.execute("SELECT max(id) FROM orders") as cursor:
            top = (await cursor.fetchone())[0]
        if top is not None and top > seen:
            await conn.execute(SETTING, ("orders_seen", str(top)))
        if hours:  # days will be dropped: a plan read before this must not be stored (any process)
            await self._bump(conn, "ship")
        return hours

    async def ship_stamp(self) -> tuple[int, int]:
        """(the shipping days' generation, the newest order's id): read before a plan."""
        row = await self.db.fetchone(f"SELECT {SHIP_STAMP}")
        return int(row[0]), int(row[1])

    async def orders_unchanged_since(self, stamp: tuple[int, int]) -> bool:
        """Since `stamp` was read: no changed orders' hours taken (days dropped) by any process, no
        order changed (no dirty mark of the triggers) and none added. Inside the caller's
        transaction, as it sees the database."""
        row = await self.db.fetchone(f"SELECT {SHIP_STAMP}, EXISTS (SELECT 1 FROM kpi_ship_dirty)")
        return (int(row[0]), int(row[1])) == stamp and not row[2]

    async def drop_ship_days(self, conn: aiosqlite.Connection, days: Iterable[str]) -> None:
        days = [(d,) for d in days]
        await conn.executemany("DELETE FROM kpi_ship_days WHERE day = ?", days)
        await conn.executemany("DELETE FROM kpi_ship_daily WHERE day = ?", days)

    async def ship_days_stored(self, first: str, last: str) -> set[str]:
        return {r[0] for r in await self.db.fetchall(
            "SELECT day FROM kpi_ship_days WHERE day >= ? AND day <= ?", (first, last))}

    async def store_ship_days(self, conn: aiosqlite.Connection, days: Sequence[str], at: int,
                              rows: Iterable[Sequence[Any]]) -> None:
        """Record `days` as stored with their (day, shop, shift, due, late, unknown) rows (in the
        caller's transaction)."""
        await conn.executemany(SHIP_DAY_INSERT, [(d, at) for d in days])
        await conn.executemany("DELETE FROM kpi_ship_daily WHERE day = ?", [(d,) for d in days])
        await conn.executemany(
            "INSERT INTO kpi_ship_daily (day, shop, shift, due, late, unknown) VALUES (?, ?, ?, ?, ?, ?)", rows)

    async def ship_daily(self, first: str, last: str) -> list[tuple]:
        return [tuple(r) for r in await self.db.fetchall(
            "SELECT day, shop, shift, due, late, unknown FROM kpi_ship_daily WHERE day >= ? AND day <= ?",
            (first, last))]


__all__ = ["ReadModelStore"]
