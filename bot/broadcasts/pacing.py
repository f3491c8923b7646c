"""Pacing broadcast sends under Telegram's flood limit (about 30 messages a second overall).

PTB's AIORateLimiter is a leaky bucket: it lets 30 requests through at once and then 30 a
second, so a long broadcast meets a strict sliding-window limit with a 429 and a pause of all
requests. The pacer keeps a broadcast under the limit instead of bouncing off it: sends are
spaced evenly at `rate` a second, and a send starts only while fewer than `window_limit` sends
completed within the last second or are still in flight. Counting completions (not starts)
keeps the promise even after a pause, when delayed requests all land at once.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Self

#: Sends a second for broadcasts: under Telegram's 30, leaving room for the bot's other replies.
BROADCAST_RATE = 28.0
#: Never more than this many sends completed in the last second plus in flight: Telegram's limit.
#: (A completion comes after its arrival at Telegram, so counting completions is on the safe side.)
WINDOW_LIMIT = 30


class Pacer:
    def __init__(self, rate: float = BROADCAST_RATE, window_limit: int = WINDOW_LIMIT, *,
                 window: float = 1.0, now: Callable[[], float] | None = None) -> None:
        if rate <= 0 or window_limit < 1:
            raise ValueError("rate and window_limit must be positive")
        self.interval = 1.0 / rate
        self.window_limit = window_limit
        self.window = window
        self._now = now or (lambda: asyncio.get_running_loop().time())
        self._next_start = 0.0
        self._in_flight = 0
        self._completed: collections.deque[float] = collections.deque()
        self._lock = asyncio.Lock()

    def _wait_needed(self) -> float:
        now = self._now()
        while self._completed and now - self._completed[0] >= self.window:
            self._completed.popleft()
        wait = max(0.0, self._next_start - now)
        if len(self._completed) + self._in_flight >= self.window_limit:
            if self._completed:
                wait = max(wait, self._completed[0] + self.window - now)
            else:  # all capacity is in flight: check again shortly
                wait = max(wait, self.interval)
        return wait

    async def acquire(self) -> None:
        """Wait for a send slot; pair with `release()` when the request has completed."""
        async with self._lock:  # slots are handed out in order, one at a time
            while (wait := self._wait_needed()) > 0:
                await asyncio.sleep(wait)
            self._in_flight += 1
            now = self._now()
            # Keep to the grid when only a little late (sleep overshoot), so the pace does not
            # drift; after a real stall start afresh rather than catching up in a burst.
            base = self._next_start if now - self._next_start < self.interval else now
            self._next_start = base + self.interval

    def release(self, *, counted: bool = True) -> None:
        """The request completed (`counted`), or the slot went unused (nothing was sent)."""
        self._in_flight -= 1
        if counted:
            self._completed.append(self._now())

    async def __aenter__(self) -> Self:
        await self.acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()
