"""Imports in flight: recorded when a file import starts, removed when it ends, so an import cut
short by a restart can be reported to its sender as interrupted (nothing was written)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.db import Database
from bot.orders.store import OrderStore


@dataclass(frozen=True)
class InFlightImport:
    id: int
    chat_id: int
    message_id: int | None
    user_id: int | None
    filename: str
    started_at: int


async def import_started(db: Database, *, chat_id: int, message_id: int | None, user_id: int | None,
                         filename: str, now: int) -> int:
    return await OrderStore(db).import_started(chat_id, message_id, user_id, filename[:255], now)


async def import_progress_message(db: Database, record_id: int, message_id: int) -> None:
    """The progress message of an import in flight (its interrupted report edits it)."""
    await OrderStore(db).import_progress_message(record_id, message_id)


async def import_ended(db: Database, record_id: int) -> None:
    await OrderStore(db).import_ended(record_id)


async def interrupted_imports(db: Database) -> list[InFlightImport]:
    """The imports a previous run left unfinished (call at start, before any import begins)."""
    rows = await OrderStore(db).imports_in_flight()
    return [InFlightImport(r["id"], r["chat_id"], r["message_id"], r["user_id"], r["filename"], r["started_at"])
            for r in rows]
