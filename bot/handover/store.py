"""SQL of the handover book; the only module that writes its tables: handover_items,
handover_history, handover_deliveries, handover_cards, handover_notices and handover_state
(0005_handover.sql). The KPI read model (bot/kpi/store.py) reads items and deliveries, never
writes them. Stored orders are looked up through the orders face, never here.

Methods taking `conn` run inside the caller's transaction (HandoverService decides).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from bot.db import Database, contains, insert_id, insert_ignore_sql, insert_replace_sql, insertion_order, placeholders

# An item with the shift it was last handed to (the newest delivery) and how often it was handed.
ITEM_SELECT = f"""
SELECT i.*,
       (SELECT COUNT(*) FROM handover_deliveries c WHERE c.item_id = i.id) AS handed_count,
       d.occurrence AS handed_to, d.delivered_at AS handed_at, d.taken_by, d.taken_at
FROM handover_items i
LEFT JOIN handover_deliveries d ON {insertion_order('d')} = (
    SELECT {insertion_order('x')} FROM handover_deliveries x WHERE x.item_id = i.id
    ORDER BY x.occurrence_start DESC, x.delivered_at DESC LIMIT 1)
"""
ITEM_COLUMNS = (
    "author_id", "occurrence", "occurrence_start", "created_at", "updated_at", "text", "kind", "urgent", "order_no",
    "attachment_file_id", "attachment_type", "attachment_name",
)
_EPOCH_SQL = insert_ignore_sql("handover_state", ("key", "value"))
_HAND_OVER_SQL = insert_ignore_sql(
    "handover_deliveries", ("item_id", "occurrence", "occurrence_start", "delivered_at"),
    select="SELECT id, ?, ?, ? FROM handover_items WHERE status = 'open' AND occurrence_start < ?",
)
_NOTICE_SQL = insert_replace_sql("handover_notices", ("occurrence", "kind", "tg_id", "status", "at"))
_CARD_SQL = insert_replace_sql("handover_cards", ("item_id", "occurrence", "chat_id", "message_id", "sent_at"))

#: How the search modes match an item (`?` filled by the service's params).
SEARCH_DATE = "i.created_at >= ? AND i.created_at < ?"
SEARCH_ORDER = f"(i.order_no = ? OR {contains('i.text', '?')})"
SEARCH_KIND = "i.kind = ?"
_ATTACHMENT_NAME = "lower(coalesce(i.attachment_name, ''))"
SEARCH_KEYWORD = (
    f"({contains('lower(i.text)', '?')} OR {contains('lower(i.resolution_note)', '?')}"
    f" OR {contains(_ATTACHMENT_NAME, '?')})"
)


class HandoverStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- items and their history (inside the service's transaction) ------------------------------

    async def add_item(self, conn, values: Sequence[object]) -> int:
        """A new item (values in ITEM_COLUMNS order); its id."""
        return await insert_id(
            conn,
            f"INSERT INTO handover_items ({', '.join(ITEM_COLUMNS)}) VALUES ({', '.join('?' for _ in ITEM_COLUMNS)})",
            tuple(values),
        )

    async def update_open_item(self, conn, item_id: int, changes: dict[str, object], now: int) -> int:
        """Set these columns (names chosen by the service) on a still-open item; rows changed."""
        assignments = ", ".join(f"{name} = ?" for name in changes)
        cursor = await conn.execute(
            f"UPDATE handover_items SET {assignments}, updated_at = ? WHERE id = ? AND status = 'open'",
            (*changes.values(), now, item_id),
        )
        return cursor.rowcount

    async def item_status_in(self, conn, item_id: int) -> str | None:
        cursor = await conn.execute("SELECT status FROM handover_items WHERE id = ?", (item_id,))
        row = await cursor.fetchone()
        return None if row is None else row["status"]

    async def add_history(self, conn, item_id: int, at: int, actor: int, action: str, before: str, after: str) -> None:
        await conn.execute(
            "INSERT INTO handover_history (item_id, at, actor, action, before, after) VALUES (?, ?, ?, ?, ?, ?)",
            (item_id, at, actor, action, before, after),
        )

    async def history(self, item_id: int) -> list[sqlite3.Row]:
        return await self.db.fetchall("SELECT * FROM handover_history WHERE item_id = ? ORDER BY id", (item_id,))

    # -- reading items ------------------------------------------------------------------------

    async def item(self, item_id: int) -> sqlite3.Row | None:
        return await self.db.fetchone(f"{ITEM_SELECT} WHERE i.id = ?", (item_id,))

    async def open_items(self) -> list[sqlite3.Row]:
        return await self.db.fetchall(f"{ITEM_SELECT} WHERE i.status = 'open' ORDER BY i.urgent DESC, i.created_at, i.id")

    async def open_items_of(self, tg_id: int) -> list[sqlite3.Row]:
        """Open items this person wrote, or took over for the shift they were last handed to."""
        return await self.db.fetchall(
            f"{ITEM_SELECT} WHERE i.status = 'open' AND (i.author_id = ? OR d.taken_by = ?)"
            " ORDER BY i.urgent DESC, i.created_at, i.id",
            (tg_id, tg_id),
        )

    async def search(self, where: str, params: tuple, limit: int) -> tuple[list[sqlite3.Row], int]:
        """(newest `limit` items matching one of the SEARCH_* conditions, how many match)."""
        total = await self.db.fetchone(f"SELECT COUNT(*) FROM handover_items i WHERE {where}", params)
        rows = await self.db.fetchall(
            f"{ITEM_SELECT} WHERE {where} ORDER BY i.created_at DESC, i.id DESC LIMIT ?", (*params, limit)
        )
        return rows, int(total[0])

    async def written_per_occurrence(self, keys: Sequence[str]) -> dict[str, int]:
        marks = placeholders(keys)
        rows = await self.db.fetchall(
            f"SELECT occurrence, COUNT(*) FROM handover_items WHERE status != 'withdrawn'"
            f" AND occurrence IN ({marks}) GROUP BY occurrence", list(keys))
        return {r[0]: r[1] for r in rows}

    async def handed_per_occurrence(self, keys: Sequence[str]) -> dict[str, sqlite3.Row]:
        """occurrence → (received, taken, avg_take, max_take in seconds)."""
        marks = placeholders(keys)
        rows = await self.db.fetchall(
            "SELECT occurrence, COUNT(*) AS received, COUNT(taken_at) AS taken,"
            " AVG(taken_at - delivered_at) AS avg_take, MAX(taken_at - delivered_at) AS max_take"
            f" FROM handover_deliveries WHERE occurrence IN ({marks}) GROUP BY occurrence", list(keys))
        return {r["occurrence"]: r for r in rows}

    async def resolved_per_occurrence(self, keys: Sequence[str]) -> dict[str, int]:
        marks = placeholders(keys)
        rows = await self.db.fetchall(
            f"SELECT resolved_occurrence, COUNT(*) FROM handover_items WHERE status = 'resolved'"
            f" AND resolved_occurrence IN ({marks}) GROUP BY resolved_occurrence", list(keys))
        return {r[0]: r[1] for r in rows}

    # -- handing over -------------------------------------------------------------------------

    async def ensure_epoch(self, now: int) -> None:
        await self.db.execute(_EPOCH_SQL, ("epoch", str(now)))

    async def epoch(self) -> int | None:
        row = await self.db.fetchone("SELECT value FROM handover_state WHERE key = 'epoch'")
        return int(row[0]) if row else None

    async def hand_over(self, occurrence: str, start: int, now: int) -> int:
        """Hand every open item written before `start` to this occurrence; how many are new."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(_HAND_OVER_SQL, (occurrence, start, now, start))
            return cursor.rowcount

    async def latest_delivery_in(self, conn, item_id: int) -> sqlite3.Row | None:
        """(occurrence, taken_by, taken_at) of the item's newest handing."""
        cursor = await conn.execute(
            "SELECT occurrence, taken_by, taken_at FROM handover_deliveries WHERE item_id = ?"
            " ORDER BY occurrence_start DESC, delivered_at DESC LIMIT 1",
            (item_id,),
        )
        return await cursor.fetchone()

    async def take(self, conn, item_id: int, occurrence: str, actor_id: int, now: int) -> int:
        cursor = await conn.execute(
            "UPDATE handover_deliveries SET taken_by = ?, taken_at = ?"
            " WHERE item_id = ? AND occurrence = ? AND taken_by IS NULL",
            (actor_id, now, item_id, occurrence),
        )
        return cursor.rowcount

    async def handed_items(self, occurrence: str) -> list[sqlite3.Row]:
        return await self.db.fetchall(
            f"{ITEM_SELECT} JOIN handover_deliveries s ON s.item_id = i.id AND s.occurrence = ?"
            " WHERE i.status = 'open' ORDER BY i.urgent DESC, i.created_at, i.id",
            (occurrence,),
        )

    async def untaken(self, cutoff: int) -> list[sqlite3.Row]:
        """Handings of open items not taken over nor alerted, delivered by `cutoff`: (item_id,
        occurrence, newest) where `newest` says whether it is the item's newest handing."""
        rows = await self.db.fetchall(
            f"SELECT d.item_id, d.occurrence, {insertion_order('d')} AS rid,"
            f" (SELECT {insertion_order('x')} FROM handover_deliveries x WHERE x.item_id = d.item_id"
            "  ORDER BY x.occurrence_start DESC, x.delivered_at DESC LIMIT 1) AS latest"
            " FROM handover_deliveries d JOIN handover_items i ON i.id = d.item_id"
            " WHERE d.taken_at IS NULL AND d.alert IS NULL AND d.delivered_at <= ? AND i.status = 'open'"
            " ORDER BY d.occurrence_start, d.item_id",
            (cutoff,),
        )
        return rows

    async def mark_alert(self, pairs: Iterable[tuple[int, str]], status: str, now: int) -> None:
        await self.db.executemany(
            "UPDATE handover_deliveries SET alert = ?, alerted_at = ? WHERE item_id = ? AND occurrence = ?",
            [(status, now, item_id, occurrence) for item_id, occurrence in pairs],
        )

    # -- notices and cards --------------------------------------------------------------------

    async def notice_status(self, occurrence: str, kind: str, tg_id: int) -> str | None:
        row = await self.db.fetchone(
            "SELECT status FROM handover_notices WHERE occurrence = ? AND kind = ? AND tg_id = ?",
            (occurrence, kind, tg_id),
        )
        return row[0] if row else None

    async def set_notice(self, occurrence: str, kind: str, tg_id: int, status: str, now: int) -> None:
        await self.db.execute(_NOTICE_SQL, (occurrence, kind, tg_id, status, now))

    async def has_card(self, item_id: int, occurrence: str, chat_id: int) -> bool:
        row = await self.db.fetchone(
            "SELECT 1 FROM handover_cards WHERE item_id = ? AND occurrence = ? AND chat_id = ?",
            (item_id, occurrence, chat_id),
        )
        return row is not None

    async def set_card(self, item_id: int, occurrence: str, chat_id: int, message_id: int, now: int) -> None:
        await self.db.execute(_CARD_SQL, (item_id, occurrence, chat_id, message_id, now))

    async def cards(self, item_id: int) -> list[sqlite3.Row]:
        return await self.db.fetchall(
            "SELECT * FROM handover_cards WHERE item_id = ? AND message_id > 0 ORDER BY sent_at", (item_id,)
        )
