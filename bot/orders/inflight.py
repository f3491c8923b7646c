"""Imports in flight: recorded when a file import starts, removed when it ends (its reports sent),
so an import cut short by a restart can be reported to its sender: interrupted (nothing written),
or written before the restart (its batch) when only the reports were cut short."""

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
    #: The import's batch (import_batches row as a dict) when its orders were written.
    written: dict | None = None


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
    store = OrderStore(db)
    found = []
    for r in await store.imports_in_flight():
        # the import's one transaction wrote its batch row, with the same sender and file name
        batch = await store.batch_written_since(r["user_id"], r["filename"], r["started_at"])
        found.append(InFlightImport(r["id"], r["chat_id"], r["message_id"], r["user_id"], r["filename"],
                                    r["started_at"], None if batch is None else dict(batch)))
    return found
