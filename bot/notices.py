"""The `notices` table: "was this notice sent lately?", for messages that must not flood (the
admin alert of one error kind at most every ten minutes). The only module that writes it."""

from __future__ import annotations

from bot.db import Database


async def claim_notice(db: Database, key: str, now: int, every_seconds: int) -> bool:
    """True (and remember `now`) if notice `key` was not sent within `every_seconds`; else False.
    Check and write in one transaction, so two concurrent callers cannot both send."""
    async with db.transaction() as conn:
        cursor = await conn.execute("SELECT sent_at FROM notices WHERE key = ?", (key,))
        row = await cursor.fetchone()
        if row is not None and now - row[0] < every_seconds:
            return False
        await conn.execute(
            "INSERT INTO notices (key, sent_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET sent_at = excluded.sent_at",
            (key, now),
        )
    return True
