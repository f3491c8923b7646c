"""SQL of the knowledge base's usage statistics; the only module that reads or writes its tables
kb_script_events and kb_misses (0003_kb_stats.sql). Timestamps are unix seconds (UTC)."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.db import Database


class KbStatsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_event(self, tg_id: int, script_id: str, kind: str, source: str, at: int) -> None:
        await self.db.execute(
            "INSERT INTO kb_script_events (tg_id, script_id, kind, source, at) VALUES (?, ?, ?, ?, ?)",
            (tg_id, script_id, kind, source, at),
        )

    async def add_miss(self, tg_id: int, query: str, at: int) -> None:
        await self.db.execute("INSERT INTO kb_misses (tg_id, query, at) VALUES (?, ?, ?)", (tg_id, query, at))

    async def script_usage(self, since_ts: int, until_ts: int | None, limit: int) -> list[sqlite3.Row]:
        """(script_id, views, copies) in [since, until), most used first."""
        return await self.db.fetchall(
            """
            SELECT script_id,
                   SUM(kind = 'view') AS views,
                   SUM(kind = 'copy') AS copies
              FROM kb_script_events
             WHERE at >= ? AND (? IS NULL OR at < ?)
             GROUP BY script_id
             ORDER BY views + copies DESC, copies DESC, script_id
             LIMIT ?
            """,
            (since_ts, until_ts, until_ts, limit),
        )

    async def misses(self, since_ts: int, until_ts: int | None, limit: int) -> list[sqlite3.Row]:
        """(query, n, last_at) of searches that found nothing in [since, until), most frequent first."""
        return await self.db.fetchall(
            """
            SELECT query, COUNT(*) AS n, MAX(at) AS last_at
              FROM kb_misses
             WHERE at >= ? AND (? IS NULL OR at < ?)
             GROUP BY query
             ORDER BY n DESC, last_at DESC
             LIMIT ?
            """,
            (since_ts, until_ts, until_ts, limit),
        )
