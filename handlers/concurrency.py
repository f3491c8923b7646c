"""Updates from different people at once; each person's own updates in order (issue 13).

PTB hands every update to the `BaseUpdateProcessor` given to `ApplicationBuilder.concurrent_updates`.
`KeyedUpdateProcessor` runs updates concurrently (up to `max_concurrent_updates`) but chains the
updates of one key: the sender (user id), or the chat when an update has no sender (channel posts, poll updates). One person's second
message therefore never overtakes their first (a pending-input reply after its prompt, a button
press after the message that made the button), while another person's /s never waits for them.

Shared state this exposes is protected where it lives: multi-statement writes go through
`Database.transaction()` (an asyncio lock plus BEGIN IMMEDIATE, checks and writes in the same
transaction: a reminder claim, a handover take-over), and the reminder tick keeps its own lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

#: Updates processed at once across all people (each person still one at a time).
MAX_CONCURRENT_UPDATES = 256


def update_key(update: object) -> tuple[str, int] | None:
    """What orders updates: ("u", user id), else ("c", chat id), else None (no ordering needed)."""
    if not isinstance(update, Update):
        return None
    if update.effective_user is not None:
        return ("u", update.effective_user.id)
    if update.effective_chat is not None:
        return ("c", update.effective_chat.id)
    return None


class KeyedUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across keys, sequential (in arrival order) within one key."""

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        # key -> (lock, number of updates holding or waiting for it); dropped when idle
        self._locks: dict[Any, list] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = update_key(update)
        if key is None:
            await coroutine
            return
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            # PTB starts one task per update in arrival order and nothing awaits between the
            # semaphore and this lock; asyncio.Lock is FIFO, so arrival order is kept per key.
            async with entry[0]:
                await coroutine
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                self._locks.pop(key, None)

    def waiting(self) -> int:
        """Updates held or queued behind a person's earlier update (for tests and diagnostics)."""
        return sum(entry[1] for entry in self._locks.values())

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
