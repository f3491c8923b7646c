"""Usage statistics of the knowledge base: script views/copies and searches that found nothing.

Plain async functions over the project's Database (bot.db), their SQL in bot/kb/store.py;
timestamps are unix seconds (UTC).The caller passes `at` from its clock so tests can move time; it defaults to now.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.kb.store import KbStatsStore

if TYPE_CHECKING:
    from bot.db import Database

#: Long pasted messages are cut: enough to see what was asked, not a copy of the chat.
MAX_QUERY_CHARS = 200


@dataclass(frozen=True)
class ScriptUsage:
    script_id: str
    views: int
    copies: int


@dataclass(frozen=True)
class MissCount:
    query: str
    count: int
    last_at: int


def _now(at: int | None) -> int:
    return int(time.time()) if at is None else int(at)


def normalise_query(query: str) -> str:
    """Collapse whitespace and cut, so the same question asked twice groups as one miss."""
    return re.sub(r"\s+", " ", query or "").strip()[:MAX_QUERY_CHARS]


async def _record_event(db: Database, tg_id: int, script_id: str, kind: str, source: str, at: int | None) -> None:
    await KbStatsStore(db).add_event(int(tg_id), script_id, kind, source, _now(at))


async def record_view(db: Database, tg_id: int, script_id: str, *, source: str = "", at: int | None = None) -> None:
    await _record_event(db, tg_id, script_id, "view", source, at)


async def record_copy(db: Database, tg_id: int, script_id: str, *, source: str = "", at: int | None = None) -> None:
    await _record_event(db, tg_id, script_id, "copy", source, at)


async def record_miss(db: Database, tg_id: int, query: str, *, at: int | None = None) -> None:
    text = normalise_query(query)
    if text:
        await KbStatsStore(db).add_miss(int(tg_id), text, _now(at))


async def top_scripts(db: Database, since_ts: int, limit: int = 10, until_ts: int | None = None) -> list[ScriptUsage]:
    """Most used scripts since `since_ts` (views, then copies), most used first."""
    rows = await KbStatsStore(db).script_usage(int(since_ts), until_ts, int(limit))
    return [ScriptUsage(row["script_id"], int(row["views"]), int(row["copies"])) for row in rows]


async def top_misses(db: Database, since_ts: int, limit: int = 20, until_ts: int | None = None) -> list[MissCount]:
    """Queries that found nothing since `since_ts`, most frequent first."""
    rows = await KbStatsStore(db).misses(int(since_ts), until_ts, int(limit))
    return [MissCount(row["query"], int(row["n"]), int(row["last_at"])) for row in rows]
