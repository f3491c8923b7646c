"""Shift-hours arithmetic for the measures: how much working time lies between two moments, and
which shift an event belongs to. The night gap (no shift working, e.g. 01:00–08:30) is never
counted: a reminder pushed at 00:55 and claimed at 08:35 waited 10 working minutes, not 7 h 40.

Windows come from bot.shifts (a shift whose end is not after its start crosses midnight). They are
merged into one sorted list with a running total, so `working(a, b)` is two bisections.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import date, datetime, timedelta, tzinfo

from bot.clock import from_ts
from bot.shifts import Shift, ShiftWindow, windows_around

_DAY = 86400
_MISSING = object()


class WorkClock:
    def __init__(self, shifts: Sequence[Shift], tz: tzinfo, start_ts: int, end_ts: int) -> None:
        self.shifts = tuple(shifts)
        self.tz = tz
        pad = 10 * _DAY
        first = from_ts(start_ts - pad).astimezone(tz).date()
        last = from_ts(end_ts + pad).astimezone(tz).date()
        windows: list[ShiftWindow] = []
        day = first
        while day <= last:
            noon = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
            windows += [w for w in windows_around(self.shifts, noon, tz, days=0)]
            day += timedelta(days=1)
        windows.sort(key=lambda w: (w.start, w.shift.name))
        self.windows = windows
        self._w_starts = [int(w.start.timestamp()) for w in windows]
        self._w_ends = [int(w.end.timestamp()) for w in windows]
        merged: list[list[int]] = []
        for w in windows:
            s, e = int(w.start.timestamp()), int(w.end.timestamp())
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        self.starts = [m[0] for m in merged]
        self.ends = [m[1] for m in merged]
        self._shift_cache: dict[int, str | None] = {}
        self._local_cache: dict[int, tuple[date, int]] = {}
        self.before: list[int] = []  # working seconds before each merged block starts
        total = 0
        for s, e in merged:
            self.before.append(total)
            total += e - s

    def _cumulative(self, ts: int) -> int:
        i = bisect_right(self.starts, ts) - 1
        if i < 0:
            return 0
        return self.before[i] + min(ts, self.ends[i]) - self.starts[i]

    def working_seconds(self, a: int, b: int) -> int:
        """Working (shift) seconds in [a, b); 0 when b <= a."""
        if b <= a:
            return 0
        return self._cumulative(b) - self._cumulative(a)

    def working_since(self, starts: Sequence[int], b: int) -> list[int]:
        """working_seconds(a, b) for every a in starts (vectorised: many open waits at once)."""
        import numpy as np

        if not len(starts):
            return []
        a = np.asarray(starts, dtype=np.int64)
        block_starts = np.asarray(self.starts, dtype=np.int64)
        i = np.searchsorted(block_starts, a, side="right") - 1
        j = np.clip(i, 0, None)
        cum_a = np.where(i < 0, 0, np.asarray(self.before, dtype=np.int64)[j]
                         + np.minimum(a, np.asarray(self.ends, dtype=np.int64)[j]) - block_starts[j])
        return [int(x) for x in np.where(a < b, self._cumulative(b) - cum_a, 0)]

    def elapsed(self, a: int, b: int, hours: str) -> int:
        """Seconds from a to b counted the standard's way: `shift` hours only, or `all` (wall clock)."""
        return self.working_seconds(a, b) if hours == "shift" else max(b - a, 0)

    def window_at(self, ts: int) -> ShiftWindow | None:
        """The shift occurrence an event at ts belongs to: the one working then, else (night gap)
        the next one to start — the shift that will have to deal with it."""
        i = bisect_right(self._w_starts, ts) - 1
        for j in range(max(i, 0), -1, -1):
            w = self.windows[j]
            if self._w_starts[j] <= ts < self._w_ends[j]:
                return w
            if j < i - len(self.shifts):
                break
        k = bisect_right(self._w_starts, ts)
        return self.windows[k] if k < len(self.windows) else None

    def working_at(self, ts: int) -> set[str]:
        """Names of every shift working at ts (overlapping shifts included); empty in a gap."""
        i = bisect_right(self._w_starts, ts)
        return {self.windows[j].shift.name for j in range(max(0, i - 3 * len(self.shifts)), i)
                if self._w_starts[j] <= ts < self._w_ends[j]}

    def shift_at(self, ts: int) -> str | None:
        minute = ts // 60  # shift boundaries are whole minutes
        name = self._shift_cache.get(minute, _MISSING)
        if name is _MISSING:
            w = self.window_at(ts)
            name = self._shift_cache[minute] = w.shift.name if w else None
        return name

    def local_day(self, ts: int) -> date:
        return self._local(ts)[0]

    def local_hour(self, ts: int) -> int:
        return self._local(ts)[1]

    def _local(self, ts: int) -> tuple[date, int]:
        slot = ts // 900  # zone offsets are whole quarter hours: one conversion per slot
        hit = self._local_cache.get(slot)
        if hit is None:
            moment = from_ts(slot * 900).astimezone(self.tz)
            hit = self._local_cache[slot] = (moment.date(), moment.hour)
        return hit
