"""SQL of the orders feature; the only module that reads or writes its tables: orders and
import_batches (0002_orders.sql, columns added by 0007), imports_in_flight (0010).

Other features read orders only through the orders face (`known_orders`, `orders_due_within`,
`find_orders`, `get_order`), which call this store. Two readers outside are known and allowed:
the KPI read model (bot/kpi/store.py) and the reminders' scan (bot/reminders/store.py) read the
orders table directly; they never write it. (The reminders' trigger on `orders` in
0004_reminders.sql writes reminder_order_changes, a reminders table.)

SQLite-only constructs (the upsert, the scratch table, insertion order, ids of new rows) are built
by bot/db.py.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite

from bot.db import (
    Database,
    greatest,
    incoming,
    insert_id,
    insertion_order,
    insertion_range,
    placeholders,
    staging_table_sql,
    upsert_sql,
)
from bot.orders.model import PLATFORMS, STATUS_RANK

#: The columns of `orders` an import writes (in the order of `order_params`).
ORDER_COLUMNS = (
    "platform", "order_no", "shop", "status", "status_raw", "refunding", "presale",
    "created_at", "paid_at", "shipped_at", "amount_cents", "buyer", "item_title", "tracking_no",
    "carrier", "on_hold", "ship_from", "ship_by", "source", "first_seen_at", "updated_at",
)
#: Every platform the orders table accepts: `platform IN (…)` puts lookups on its unique index.
ALL_PLATFORMS_SQL = ", ".join(f"'{p}'" for p in PLATFORMS)
UNPAID = "unpaid"
SHIPPING_STATUSES = ("paid_unshipped", "partially_shipped")
CLOCK_COLUMNS = (
    "order_no, platform, shop, status, created_at, paid_at, ship_from, ship_by, presale, refunding, on_hold"
)


def _rank(expr: str) -> str:
    cases = " ".join(f"WHEN '{code}' THEN {rank}" for code, rank in STATUS_RANK.items())
    return f"(CASE {expr} {cases} END)"


#: Each batch is staged with executemany into a scratch table, then merged by ONE upsert statement.
#: A per-row upsert pays a statement journal for every row once the orders table has an UPDATE
#: trigger (0004_reminders adds one): twice as slow. The single statement also runs entirely
#: inside SQLite, off the GIL.
STAGING_TABLE = "orders_incoming"
STAGING_CREATE_SQL, STAGING = staging_table_sql(STAGING_TABLE, ORDER_COLUMNS)
STAGING_INSERT_SQL = f"INSERT INTO {STAGING} ({', '.join(ORDER_COLUMNS)}) VALUES ({', '.join('?' * len(ORDER_COLUMNS))})"
STAGING_CLEAR_SQL = f"DELETE FROM {STAGING}"


def _upsert_sql(from_table: str = STAGING, *, ranged: bool = False) -> str:
    """The upsert implementing the merge rule in bot/orders/importer.py's docstring: every row of
    `from_table`, or (`ranged`) the rows inserted (n, m]th, for `(n, m)` as parameters."""
    # `closed` has the highest rank, so "same or later" also lets closed follow anything and
    # keeps a closed order closed.
    newer = f"({_rank(incoming('status'))} >= {_rank('orders.status')})"

    def pick(column: str, kind: str) -> str:
        new, old = incoming(column), f"orders.{column}"
        if kind == "state":  # follows the status
            return f"CASE WHEN {newer} THEN {new} ELSE {old} END"
        if kind == "sticky":  # presale: once on, stays on
            return greatest(old, new)
        if kind == "text":  # '' means "the file had nothing"
            new, old = f"NULLIF({new}, '')", f"NULLIF({old}, '')"
            return f"COALESCE(CASE WHEN {newer} THEN COALESCE({new}, {old}) ELSE COALESCE({old}, {new}) END, '')"
        return f"CASE WHEN {newer} THEN COALESCE({new}, {old}) ELSE COALESCE({old}, {new}) END"

    kinds = {
        "shop": "text", "status": "state", "status_raw": "state", "refunding": "state", "on_hold": "state", "presale": "sticky",
        "created_at": "value", "paid_at": "value", "shipped_at": "value", "amount_cents": "value",
        "ship_from": "value", "ship_by": "value", "buyer": "text", "item_title": "text", "tracking_no": "text", "carrier": "text",
    }
    merged = {column: pick(column, kind) for column, kind in kinds.items()}
    changed = "\n    OR ".join(f"({expr}) IS NOT orders.{column}" for column, expr in merged.items())
    updates = {**merged, "source": incoming("source"), "updated_at": incoming("updated_at")}
    # Insertion order applies the batch in file order, so a number twice in a file merges like
    # two imports.
    return upsert_sql(
        "orders", ORDER_COLUMNS, ("platform", "order_no"), updates,
        from_table=from_table, from_where=insertion_range() if ranged else None, order_by=insertion_order(),
        where=changed,
    )


UPSERT_SQL = _upsert_sql()
_import_tables = itertools.count(1)


class OrderStaging:
    """A file import's (or a parsed push's) rows in a scratch table of its own (issue 12): filled
    a chunk per short transaction while the parsing process runs on, merged into `orders` later
    in ONE transaction by `OrderBatchWriter.merge_staged`, a range of rows per statement. Two
    imports at once never mix their rows (a table name per import)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.name = f"orders_import_{os.getpid()}_{next(_import_tables)}"
        self.create_sql, self.table = staging_table_sql(self.name, ORDER_COLUMNS)
        columns = ", ".join(ORDER_COLUMNS)
        self.insert_sql = f"INSERT INTO {self.table} ({columns}) VALUES ({', '.join('?' * len(ORDER_COLUMNS))})"
        self.drop_sql = f"DROP TABLE IF EXISTS {self.table}"
        self.upsert_sql = _upsert_sql(self.table, ranged=True)
        self.created = False

    async def create(self) -> None:
        if not self.created:
            async with self.db.transaction() as conn:
                await conn.execute(self.create_sql)
            self.created = True

    async def insert(self, params: Sequence[tuple]) -> None:
        """One chunk of rows, in a short transaction of its own."""
        async with self.db.transaction() as conn:
            await conn.executemany(self.insert_sql, params)

    async def drop(self) -> None:
        if self.created:
            async with self.db.transaction() as conn:
                await conn.execute(self.drop_sql)
            self.created = False


class OrderBatchWriter:
    """Upserts batches of `orders` rows inside an open transaction; counts rows changed."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def count(self) -> int:
        async with self.conn.execute("SELECT count(*) FROM orders") as cursor:
            row = await cursor.fetchone()
        return int(row[0])

    async def prepare(self) -> None:
        await self.conn.execute(STAGING_CREATE_SQL)
        await self.conn.execute(STAGING_CLEAR_SQL)

    async def upsert(self, params: Sequence[tuple]) -> int:
        """Merge one batch; the number of rows inserted or changed (not trigger rows)."""
        await self.conn.executemany(STAGING_INSERT_SQL, params)
        cursor = await self.conn.execute(UPSERT_SQL)
        changed = max(cursor.rowcount, 0)
        await cursor.close()
        await self.conn.execute(STAGING_CLEAR_SQL)
        return changed

    async def merge_staged(self, staging: OrderStaging, start: int, end: int) -> int:
        """Merge the staged rows inserted (start, end]th; the number of rows inserted or changed
        (not trigger rows)."""
        cursor = await self.conn.execute(staging.upsert_sql, (start, end))
        changed = max(cursor.rowcount, 0)
        await cursor.close()
        return changed

    async def record_batch(self, **values: Any) -> int:
        """One import_batches row (what an import or a push did); its id."""
        columns = ", ".join(values)
        return await insert_id(
            self.conn,
            f"INSERT INTO import_batches ({columns}) VALUES ({', '.join('?' * len(values))})",
            tuple(values.values()),
        )


class OrderStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def writer(conn: aiosqlite.Connection) -> OrderBatchWriter:
        return OrderBatchWriter(conn)

    # -- lookups -------------------------------------------------------------------------------

    async def by_number(self, order_no: str) -> list[sqlite3.Row]:
        """Every stored order with this number (normally one), most recently updated first."""
        return await self.db.fetchall(
            f"SELECT * FROM orders WHERE platform IN ({ALL_PLATFORMS_SQL}) AND order_no = ? "
            "ORDER BY updated_at DESC, id DESC",
            (order_no,),
        )

    async def by_key(self, platform: str, order_no: str) -> sqlite3.Row | None:
        return await self.db.fetchone("SELECT * FROM orders WHERE platform = ? AND order_no = ?", (platform, order_no))

    async def table_exists(self) -> bool:
        return await self.db.table_exists("orders")

    async def refs(self, numbers: Sequence[str]) -> list[sqlite3.Row]:
        """(order_no, platform, shop, status) of the stored orders among these numbers, oldest
        update first."""
        marks = placeholders(numbers)
        # Naming every platform lets SQLite use the UNIQUE (platform, order_no) index; on the order
        # number alone it would scan the whole orders table.
        return await self.db.fetchall(
            f"SELECT order_no, platform, shop, status FROM orders WHERE platform IN ({ALL_PLATFORMS_SQL})"
            f" AND order_no IN ({marks}) ORDER BY updated_at ASC, id ASC",
            list(numbers),
        )

    async def open_clocks(self, low: int, high: int, start: int, end: int) -> list[sqlite3.Row]:
        """Open orders whose clock start (created for unpaid; ship_from or paid otherwise) is in
        [low, high), or whose own promised deadline (ship_by) is in [start, end)."""
        base = "COALESCE(ship_from, paid_at)"
        ship_marks = placeholders(SHIPPING_STATUSES)
        return await self.db.fetchall(
            f"SELECT {CLOCK_COLUMNS} FROM orders WHERE status = ? AND created_at >= ? AND created_at < ?"
            " UNION ALL "
            f"SELECT {CLOCK_COLUMNS} FROM orders WHERE status IN ({ship_marks}) AND presale = 0 AND refunding = 0"
            f" AND on_hold = 0 AND ((ship_by IS NULL AND {base} >= ? AND {base} < ?) OR (ship_by >= ? AND ship_by < ?))",
            (UNPAID, low, high, *SHIPPING_STATUSES, low, high, start, end),
        )

    # -- imports in flight ---------------------------------------------------------------------

    async def import_started(self, chat_id: int, message_id: int | None, user_id: int | None,
                             filename: str, now: int) -> int:
        return await self.db.insert(
            "INSERT INTO imports_in_flight (chat_id, message_id, user_id, filename, started_at) VALUES (?, ?, ?, ?, ?)",
            (chat_id, message_id, user_id, filename, now),
        )

    async def import_progress_message(self, record_id: int, message_id: int) -> None:
        await self.db.execute("UPDATE imports_in_flight SET message_id = ? WHERE id = ?", (message_id, record_id))

    async def import_ended(self, record_id: int) -> None:
        await self.db.execute("DELETE FROM imports_in_flight WHERE id = ?", (record_id,))

    async def batch_written_since(self, user_id: int | None, filename: str, since: int) -> sqlite3.Row | None:
        """The newest file batch of `user_id` named `filename` recorded at or after `since`."""
        return await self.db.fetchone(
            "SELECT * FROM import_batches WHERE source = 'file' AND actor IS ? AND filename = ? AND created_at >= ?"
            " ORDER BY id DESC LIMIT 1", (user_id, filename, since))

    async def imports_in_flight(self) -> list[sqlite3.Row]:
        return await self.db.fetchall("SELECT * FROM imports_in_flight ORDER BY id")

