"""Knowing when the bot has handled what it was sent: for the emulator's `wait_until_idle`
(the sandbox and the end-to-end tests), never for production."""

from __future__ import annotations

import asyncio
from typing import Any

from handlers import outbox


class UpdateTracker:
    """Knows which updates the Application has finished handling. Updates of different people
    run concurrently (issue 13) and may finish out of order: `done_upto` is the highest id up to
    which every update has finished (the emulator numbers updates without gaps).

    Registered with the emulator, it makes `wait_until_idle` mean "the bot handled everything
    sent so far", not merely "fetched it", which under load are far apart."""

    def __init__(self) -> None:
        self.done_upto = 0
        self._finished: set[int] = set()
        self._base: int | None = None
        self.changed = asyncio.Condition()

    @classmethod
    def watching(cls, app: Any, emu: Any) -> UpdateTracker:
        """Track `app` and make `emu.wait_until_idle` wait for its handling and its outbox."""
        tracker = cls()
        tracker.track(app)
        emu.add_idle_condition(tracker.wait_handled)
        emu.add_idle_condition(tracker.wait_outbox)
        return tracker

    def track(self, app: Any) -> None:
        self.app = app
        original = app.process_update

        async def tracked(update: object) -> None:
            update_id = getattr(update, "update_id", 0)
            if self._base is None:
                self._base = self.done_upto = update_id - 1
            try:
                await original(update)
            finally:
                async with self.changed:
                    self._finished.add(update_id)
                    while self.done_upto + 1 in self._finished:
                        self.done_upto += 1
                        self._finished.discard(self.done_upto)
                    self.changed.notify_all()

        app.process_update = tracked

    async def wait_outbox(self, last_update_id: int) -> None:
        """And the outbox's background fan-out and bulk sends are done (issue 13)."""
        await outbox.wait_idle(self.app)

    async def wait_handled(self, last_update_id: int) -> None:
        async with self.changed:
            await self.changed.wait_for(lambda: self.done_upto >= last_update_id)
