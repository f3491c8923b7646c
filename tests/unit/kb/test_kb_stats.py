"""Usage statistics repository on a real (temporary) database."""

from __future__ import annotations

from bot.db import Database
from bot.kb import stats


async def test_views_copies_and_misses(tmp_path):
    db = await Database.open(tmp_path / "kb.db")
    try:
        day = 1_780_000_000
        await stats.record_view(db, 11, "ret_7day_rules", source="search", at=day)
        await stats.record_view(db, 12, "ret_7day_rules", at=day + 10)
        await stats.record_copy(db, 11, "ret_7day_rules", at=day + 20)
        await stats.record_view(db, 11, "log_slow", at=day + 30)
        await stats.record_copy(db, 11, "log_slow", at=day + 31)
        await stats.record_copy(db, 12, "log_slow", at=day + 32)
        await stats.record_view(db, 11, "old_script", at=day - 1000)

        top = await stats.top_scripts(db, since_ts=day)
        assert [(u.script_id, u.views, u.copies) for u in top] == [
            ("log_slow", 1, 2),
            ("ret_7day_rules", 2, 1),
        ]
        assert [u.script_id for u in await stats.top_scripts(db, since_ts=0, limit=1)] == ["log_slow"]
        assert await stats.top_scripts(db, since_ts=0, until_ts=day) == [
            stats.ScriptUsage("old_script", 1, 0)
        ]

        await stats.record_miss(db, 11, "  宠物  能寄吗 ", at=day)
        await stats.record_miss(db, 12, "宠物 能寄吗", at=day + 5)
        await stats.record_miss(db, 12, "保价多少", at=day + 6)
        await stats.record_miss(db, 12, "   ", at=day + 7)  # nothing to record
        await stats.record_miss(db, 12, "很长" * 500, at=day + 8)
        misses = await stats.top_misses(db, since_ts=day)
        assert misses[0] == stats.MissCount("宠物 能寄吗", 2, day + 5)
        assert {m.query for m in misses} >= {"保价多少"}
        assert max(len(m.query) for m in misses) == stats.MAX_QUERY_CHARS
        assert await stats.top_misses(db, since_ts=day + 100) == []
        row = await db.fetchone("SELECT COUNT(*) FROM kb_misses")
        assert row[0] == 4
    finally:
        await db.close()


async def test_default_timestamp_is_now(tmp_path):
    import time

    db = await Database.open(tmp_path / "kb.db")
    try:
        before = int(time.time())
        await stats.record_view(db, 1, "x")
        row = await db.fetchone("SELECT at, kind, tg_id FROM kb_script_events")
        assert row["kind"] == "view" and row["tg_id"] == 1 and before <= row["at"] <= int(time.time()) + 1
    finally:
        await db.close()
