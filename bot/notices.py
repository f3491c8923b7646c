"""The `notices` table: "was this notice sent lately?", for messages that must not flood (the
admin alert of one error kind at most every ten minutes). The only module that reads or writes it:
the store of this core table (0001_core.sql)."""

from __future__ import annotations

import logging
import sqlite3

from bot.db import Database, incoming, upsert_sql

log = logging.getLogger(__name__)

#: Fallback when the database cannot be written (disk full, read-only, corrupt): the alert about
#: that very fault must still go out, throttled in this process's memory. (db path, key) → sent_at.
_IN_MEMORY: dict[tuple[str, str], int] = {}

_REMEMBER_SQL = upsert_sql("notices", ("key", "sent_at"), ("key",), {"sent_at": incoming("sent_at")})


def claim_in_memory(db: Database, key: str, now: int, every_seconds: int) -> bool:
    slot = (str(db.path), key)
    last = _IN_MEMORY.get(slot)
    if last is not None and now - last < every_seconds:
        return False
    _IN_MEMORY[slot] = now
    return True


async def claim_notice(db: Database, key: str, now: int, every_seconds: int) -> bool:
    """True (and remember `now`) if notice `key` was not sent within `every_seconds`; else False.
    Check and write in one transaction, so two concurrent callers cannot both send. When the
    database cannot be written, throttles in memory instead (the alert path needs no write)."""
    try:
        return await _claim_in_db(db, key, now, every_seconds)
    except (sqlite3.Error, OSError) as exc:
        log.warning("notice %s throttled in memory: database write failed (%s)", key, exc)
        return claim_in_memory(db, key, now, every_seconds)


async def _claim_in_db(db: Database, key: str, now: int, every_seconds: int) -> bool:
    async with db.transaction() as conn:
        cursor = await conn.execute("SELECT sent_at FROM notices WHERE key = ?", (key,))
        row = await cursor.fetchone()
        if row is not None and now - row[0] < every_seconds:
            return False
        await conn.execute(_REMEMBER_SQL, (key, now))
    return True
