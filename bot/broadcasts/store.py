"""SQL of the broadcasts feature; the only module that writes its tables: broadcasts,
broadcast_recipients and broadcast_schedules (0006_broadcasts.sql). It READS users (names and
whether someone is still on the team, for rosters and counts) but never writes it; the KPI read
model (bot/kpi/store.py) reads these tables, never writes them.

Methods taking `conn` run inside the caller's transaction (BroadcastService decides).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from bot.db import Database, insert_id, insert_ignore_sql, insertion_order

RECIPIENT_COLUMNS = (
    "r.broadcast_id, r.tg_id, r.status, r.message_id, r.error, r.sent_at, r.acked_at, r.renotify_count,"
    " r.last_notified_at, u.display_name, u.full_name, u.username"
)

#: A deactivated person no longer counts: not as missing, not as waiting (an acknowledgement
#: they gave while still on the team stays on the record).
STILL_COUNTED = "(r.acked_at IS NOT NULL OR COALESCE(u.active, 1) = 1)"

#: The next visible number, taken inside the transaction that sends (migration 0013).
_NEXT_NUMBER = "(SELECT COALESCE(MAX(number), 0) + 1 FROM broadcasts)"

_RECIPIENTS_SQL = insert_ignore_sql("broadcast_recipients", ("broadcast_id", "tg_id", "status", "error"))


class BroadcastStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _update(self, sql: str, params: Sequence[object]) -> int:
        """One UPDATE in its own transaction; the number of rows it changed."""
        return await self.db.execute(sql, params)

    # -- broadcasts ---------------------------------------------------------------------------

    async def add_draft(self, author_id: int, kind: str, body_html: str, file_id: str | None,
                        file_name: str | None, pin: int | None, schedule_rule: str | None,
                        schedule_text: str | None, now: int) -> int:
        return await self.db.insert(
            "INSERT INTO broadcasts (author_id, status, kind, body_html, file_id, file_name, pin, schedule_rule,"
            " schedule_text, created_at) VALUES (?, 'draft', ?, ?, ?, ?, ?, ?, ?, ?)",
            (author_id, kind, body_html, file_id, file_name, pin, schedule_rule, schedule_text, now),
        )

    async def broadcast(self, broadcast_id: int) -> sqlite3.Row | None:
        return await self.db.fetchone("SELECT * FROM broadcasts WHERE id = ?", (broadcast_id,))

    async def set_draft_choices(self, broadcast_id: int, changes: dict[str, object]) -> None:
        """Set these columns (names chosen by the service) on a draft."""
        assignments = ", ".join(f"{column} = ?" for column in changes)
        await self.db.execute(
            f"UPDATE broadcasts SET {assignments} WHERE id = ? AND status = 'draft'", (*changes.values(), broadcast_id)
        )

    async def reset_draft_choices(self, broadcast_id: int, pin: int | None) -> None:
        await self.db.execute(
            "UPDATE broadcasts SET audience = NULL, ack_required = NULL, urgent = NULL, pin = ?, silent = NULL"
            " WHERE id = ? AND status = 'draft'",
            (pin, broadcast_id),
        )

    async def cancel_draft(self, broadcast_id: int) -> None:
        await self.db.execute("UPDATE broadcasts SET status = 'cancelled' WHERE id = ? AND status = 'draft'",
                              (broadcast_id,))

    async def set_panel(self, broadcast_id: int, chat_id: int, message_id: int) -> None:
        await self.db.execute("UPDATE broadcasts SET panel_chat_id = ?, panel_message_id = ? WHERE id = ?",
                              (chat_id, message_id, broadcast_id))

    async def start_sending(self, conn, broadcast_id: int, now: int) -> int:
        """The draft becomes 'sending' with the next visible number; rows changed (0: not a draft any more)."""
        cursor = await conn.execute(
            f"UPDATE broadcasts SET status = 'sending', sent_at = ?, number = {_NEXT_NUMBER}"
            " WHERE id = ? AND status = 'draft'",
            (now, broadcast_id),
        )
        return cursor.rowcount

    async def add_recipients(self, conn, rows: Sequence[tuple[int, int, str, str | None]]) -> None:
        """(broadcast_id, tg_id, status, error) rows; a person already listed is kept as is."""
        await conn.executemany(_RECIPIENTS_SQL, rows)

    async def sending(self) -> list[sqlite3.Row]:
        return await self.db.fetchall("SELECT * FROM broadcasts WHERE status = 'sending' ORDER BY id")

    async def finish(self, broadcast_id: int, now: int) -> int:
        """'done' once no row is pending or in flight; rows changed."""
        return await self._update(
            "UPDATE broadcasts SET status = 'done', finished_at = ? WHERE id = ? AND status = 'sending' AND NOT EXISTS"
            " (SELECT 1 FROM broadcast_recipients WHERE broadcast_id = ? AND status IN ('pending', 'sending'))",
            (now, broadcast_id, broadcast_id),
        )

    async def set_team_message(self, broadcast_id: int, message_id: int) -> None:
        await self.db.execute("UPDATE broadcasts SET team_message_id = ? WHERE id = ?", (message_id, broadcast_id))

    async def set_team_pinned(self, broadcast_id: int) -> None:
        await self.db.execute("UPDATE broadcasts SET team_pinned = 1 WHERE id = ?", (broadcast_id,))

    async def recent(self, limit: int) -> list[sqlite3.Row]:
        return await self.db.fetchall(
            "SELECT * FROM broadcasts WHERE status IN ('sending', 'done') ORDER BY number DESC LIMIT ?", (limit,)
        )

    # -- recipients ---------------------------------------------------------------------------

    async def release_interrupted(self, broadcast_id: int, error: str) -> int:
        return await self._update(
            "UPDATE broadcast_recipients SET status = 'failed', error = ? WHERE broadcast_id = ? AND status = 'sending'",
            (error, broadcast_id),
        )

    async def claim_next(self, broadcast_id: int) -> int | None:
        """Mark the first pending row (in insertion order) 'sending'; its tg_id, None if none."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "SELECT tg_id FROM broadcast_recipients WHERE broadcast_id = ? AND status = 'pending'"
                f" ORDER BY {insertion_order()} LIMIT 1",
                (broadcast_id,),
            )
            row = await cursor.fetchone()
            await cursor.close()
            if row is None:
                return None
            await conn.execute(
                "UPDATE broadcast_recipients SET status = 'sending' WHERE broadcast_id = ? AND tg_id = ?",
                (broadcast_id, row[0]),
            )
        return row[0]

    async def unclaim(self, broadcast_id: int, tg_id: int) -> None:
        await self.db.execute(
            "UPDATE broadcast_recipients SET status = 'pending' WHERE broadcast_id = ? AND tg_id = ? AND status = 'sending'",
            (broadcast_id, tg_id),
        )

    async def settle(self, broadcast_id: int, tg_id: int, status: str, message_id: int | None, error: str | None,
                     sent_at: int | None) -> None:
        await self.db.execute(
            "UPDATE broadcast_recipients SET status = ?, message_id = ?, error = ?, sent_at = ?, last_notified_at = ?"
            " WHERE broadcast_id = ? AND tg_id = ?",
            (status, message_id, error, sent_at, sent_at, broadcast_id, tg_id),
        )

    async def status_counts(self, broadcast_id: int) -> list[sqlite3.Row]:
        """(status, n, acked) over the rows that still count."""
        return await self.db.fetchall(
            "SELECT r.status, COUNT(*) AS n, COUNT(r.acked_at) AS acked FROM broadcast_recipients r"
            f" LEFT JOIN users u ON u.tg_id = r.tg_id WHERE r.broadcast_id = ? AND {STILL_COUNTED} GROUP BY r.status",
            (broadcast_id,),
        )

    async def recipient(self, broadcast_id: int, tg_id: int) -> sqlite3.Row | None:
        return await self.db.fetchone(
            f"SELECT {RECIPIENT_COLUMNS} FROM broadcast_recipients r LEFT JOIN users u ON u.tg_id = r.tg_id"
            " WHERE r.broadcast_id = ? AND r.tg_id = ?",
            (broadcast_id, tg_id),
        )

    async def acknowledge(self, broadcast_id: int, tg_id: int, message_id: int | None, now: int) -> None:
        await self.db.execute(
            "UPDATE broadcast_recipients SET acked_at = ?, status = 'sent', error = NULL,"
            " message_id = COALESCE(message_id, ?), sent_at = COALESCE(sent_at, ?)"
            " WHERE broadcast_id = ? AND tg_id = ? AND acked_at IS NULL",
            (now, message_id, now, broadcast_id, tg_id),
        )

    async def roster(self, broadcast_id: int) -> list[sqlite3.Row]:
        """Rows that still count: acknowledged first (in order), then the rest as inserted."""
        return await self.db.fetchall(
            f"SELECT {RECIPIENT_COLUMNS} FROM broadcast_recipients r LEFT JOIN users u ON u.tg_id = r.tg_id"
            f" WHERE r.broadcast_id = ? AND {STILL_COUNTED}"
            f" ORDER BY r.acked_at IS NULL, r.acked_at, {insertion_order('r')}",
            (broadcast_id,),
        )

    async def mark_notified(self, broadcast_id: int, tg_id: int, now: int, renotified: int) -> None:
        await self.db.execute(
            "UPDATE broadcast_recipients SET last_notified_at = ?, renotify_count = renotify_count + ?"
            " WHERE broadcast_id = ? AND tg_id = ?",
            (now, renotified, broadcast_id, tg_id),
        )

    async def renotify_candidates(self, limit: int, notified_by: int) -> list[sqlite3.Row]:
        """Urgent copies not acknowledged, last notified by `notified_by`, fewer than `limit`
        re-notifications, to active people who have not blocked the bot."""
        return await self.db.fetchall(
            f"SELECT {RECIPIENT_COLUMNS} FROM broadcast_recipients r JOIN broadcasts b ON b.id = r.broadcast_id"
            " LEFT JOIN users u ON u.tg_id = r.tg_id"
            " WHERE b.urgent = 1 AND b.ack_required = 1 AND b.status IN ('sending', 'done')"
            " AND r.status = 'sent' AND r.acked_at IS NULL AND r.renotify_count < ?"
            " AND COALESCE(r.last_notified_at, r.sent_at) <= ? AND u.active = 1 AND u.blocked_at IS NULL"
            f" ORDER BY r.broadcast_id, {insertion_order('r')}",
            (limit, notified_by),
        )

    async def drop_pending_of(self, tg_id: int) -> int:
        return await self.db.execute("DELETE FROM broadcast_recipients WHERE tg_id = ? AND status = 'pending'", (tg_id,))

    # -- schedules ----------------------------------------------------------------------------

    async def same_schedule(self, rule: str, kind: str, body_html: str, file_id: str | None, audience: str | None,
                            ack_required: int | None, urgent: int | None, pin: int | None,
                            silent: int | None) -> int | None:
        """The id of an active schedule with this rule and this very content and choices."""
        row = await self.db.fetchone(
            "SELECT s.id FROM broadcast_schedules s JOIN broadcasts b ON b.id = s.template_id"
            " WHERE s.status = 'active' AND s.rule = ? AND b.kind = ? AND b.body_html = ?"
            " AND COALESCE(b.file_id, '') = COALESCE(?, '') AND b.audience IS ? AND b.ack_required IS ?"
            " AND b.urgent IS ? AND b.pin IS ? AND b.silent IS ?",
            (rule, kind, body_html, file_id, audience, ack_required, urgent, pin, silent),
        )
        return None if row is None else row["id"]

    async def make_template(self, conn, broadcast_id: int) -> int:
        cursor = await conn.execute(
            "UPDATE broadcasts SET status = 'template' WHERE id = ? AND status = 'draft'", (broadcast_id,)
        )
        return cursor.rowcount

    async def add_schedule(self, conn, template_id: int, author_id: int, rule: str, rule_text: str, next_run: int,
                           grace_minutes: int, now: int) -> int:
        return await insert_id(
            conn,
            "INSERT INTO broadcast_schedules (template_id, author_id, rule, rule_text, next_run, grace_minutes,"
            " status, created_at) VALUES (?, ?, ?, ?, ?, ?, 'active', ?)",
            (template_id, author_id, rule, rule_text, next_run, grace_minutes, now),
        )

    async def schedule(self, schedule_id: int) -> sqlite3.Row | None:
        return await self.db.fetchone("SELECT * FROM broadcast_schedules WHERE id = ?", (schedule_id,))

    async def active_schedules(self) -> list[sqlite3.Row]:
        return await self.db.fetchall(
            "SELECT * FROM broadcast_schedules WHERE status = 'active' ORDER BY paused, next_run IS NULL, next_run, id"
        )

    async def pause(self, schedule_id: int) -> None:
        await self.db.execute("UPDATE broadcast_schedules SET paused = 1 WHERE id = ?", (schedule_id,))

    async def resume(self, schedule_id: int, next_run: int) -> None:
        await self.db.execute("UPDATE broadcast_schedules SET paused = 0, next_run = ? WHERE id = ?",
                              (next_run, schedule_id))

    async def pause_running_of(self, author_id: int) -> list[int]:
        """Pause the author's running schedules; their ids."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "SELECT id FROM broadcast_schedules WHERE author_id = ? AND status = 'active' AND paused = 0 ORDER BY id",
                (author_id,),
            )
            ids = [row[0] for row in await cursor.fetchall()]
            await conn.executemany("UPDATE broadcast_schedules SET paused = 1 WHERE id = ?", [(i,) for i in ids])
        return ids

    async def delete_schedule(self, schedule_id: int) -> None:
        await self.db.execute("UPDATE broadcast_schedules SET status = 'deleted' WHERE id = ?", (schedule_id,))

    async def due_schedules(self, now: int) -> list[sqlite3.Row]:
        return await self.db.fetchall(
            "SELECT * FROM broadcast_schedules WHERE status = 'active' AND paused = 0 AND next_run <= ? ORDER BY next_run",
            (now,),
        )

    async def advance(self, conn, schedule_id: int, expected_next_run: int, next_run: int | None, last_run: int,
                      status: str) -> int:
        """Move a schedule on from the run it was due at; rows changed (0: another tick took it)."""
        cursor = await conn.execute(
            "UPDATE broadcast_schedules SET next_run = ?, last_run = ?, status = ?"
            " WHERE id = ? AND status = 'active' AND next_run = ?",
            (next_run, last_run, status, schedule_id, expected_next_run),
        )
        return cursor.rowcount

    async def start_from_template(self, conn, template_id: int, schedule_id: int, now: int, sent_at: int) -> int:
        """A 'sending' broadcast copied from the schedule's template, with the next visible number; its id."""
        return await insert_id(
            conn,
            "INSERT INTO broadcasts (author_id, status, kind, body_html, file_id, file_name, audience,"
            " ack_required, urgent, pin, silent, schedule_id, created_at, sent_at, number)"
            " SELECT author_id, 'sending', kind, body_html, file_id, file_name, audience, ack_required, urgent,"
            f" pin, silent, ?, ?, ?, {_NEXT_NUMBER} FROM broadcasts WHERE id = ?",
            (schedule_id, now, sent_at, template_id),
        )
