"""Daily groups of the KPI read model (table kpi_daily): the reminder facts of one shop-local day
summed per (shop, shift, claimer, credited person), with the exact values behind every median and
P90 kept as sorted arrays (so a median over a year is exact, not a median of medians), and the
aggregation of a period's groups into the report's figures. Plain data; no SQL.

A year of reminders (~150k) is ~30k groups: the report adds counts and merges sorted arrays per
level instead of working through every reminder.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any



class _Numpy:
    """numpy, imported at first use (issue 13, cold start: ~0.1-0.2 s the bot's first answer
    need not wait for; bot/kpi/worktime.py imports it late too)."""

    def __getattr__(self, name: str) -> Any:
        import numpy

        globals()["np"] = numpy
        return getattr(numpy, name)


np: Any = _Numpy()

#: kpi_daily: (day, shop, shift, claimer, credit), `counts` (these sums, packed), then sorted arrays
COUNTS = ("n", "escalated", "snoozed", "before", "pushed", "acted", "open", "decided", "paid", "cents",
          "cents_acted", "unacted", "unacted_paid", "acted_paid", "warned", "saved", "warn_open")
ARRAYS = ("claim_v", "done_v", "pc_done_work_v", "pc_done_wall_v", "pc_void_work_v", "pc_void_wall_v",
          "pay_delta_v", "open_push_v")
KEY = ("day", "shop", "shift", "claimer", "credit")
COLUMNS = KEY + ("counts",) + ARRAYS
#: kpi_reminder_facts columns read to build the groups (bot/kpi/facts.py Fact)
FACT_READ = ("day", "shop", "shift", "claimer", "credit", "claim_s", "done_s", "escalated", "snoozed", "pc_end",
             "pc_work", "pc_wall", "pay", "acted", "paid", "cents", "pay_delta", "warn", "warn_ok", "push")
#: The dtype of every packed array (a numpy dtype string: numpy is imported at first use).
INT = "<i8"


def __getattr__(name: str) -> Any:
    if name == "EMPTY":  # an empty array of INT, made at first use
        value = globals()["EMPTY"] = np.empty(0, INT)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pack(values: Sequence[int]) -> bytes:
    return np.sort(np.asarray(values, dtype=INT)).tobytes()


def build(facts: Iterable[Sequence[Any]]) -> list[tuple]:
    """kpi_daily rows from fact rows (FACT_READ order)."""
    groups: dict[tuple, tuple[list[int], list[list[int]]]] = {}
    for (day, shop, shift, claimer, credit, claim_s, done_s, escalated, snoozed, pc_end, pc_work, pc_wall, pay,
         acted, paid, cents, pay_delta, warn, warn_ok, push) in facts:
        key = (day, shop, shift, claimer, credit)
        g = groups.get(key)
        if g is None:
            g = groups[key] = ([0] * len(COUNTS), [[] for _ in ARRAYS])
        c, v = g
        c[0] += 1
        c[1] += escalated
        c[2] += snoozed
        if claim_s is not None:
            v[0].append(claim_s)
        if done_s is not None:
            v[1].append(done_s)
        if pc_end == "done":
            v[2].append(pc_work)
            v[3].append(pc_wall)
        elif pc_end == "void":
            v[4].append(pc_work)
            v[5].append(pc_wall)
        elif pc_end == "open":
            v[7].append(push)
        if pay == "before":
            c[3] += 1
        elif pay is not None:
            c[4] += 1
            c[5] += acted
            if pay == "open":
                c[6] += 1
            else:
                c[7] += 1
                c[8] += paid
                c[9] += cents
                if acted:
                    c[10] += cents
                    c[13] += paid
                else:
                    c[11] += 1
                    c[12] += paid
                if paid:
                    v[6].append(pay_delta)
        elif warn == "open":
            c[16] += 1
        elif warn == "judged":
            c[14] += 1
            c[15] += warn_ok
    return [(*key, np.asarray(c, dtype=INT).tobytes(), *(pack(x) if x else None for x in v))
            for key, (c, v) in groups.items()]


class Groups:
    """A period's kpi_daily rows (COLUMNS order) and what the report asks of them. Sums run over a
    counts matrix, medians over the merged sorted arrays (numpy), never over single reminders."""

    def __init__(self, rows: Sequence[Sequence[Any]]) -> None:
        self.rows = list(rows)
        self.counts = (np.frombuffer(b"".join(r[5] for r in self.rows), dtype=INT).reshape(-1, len(COUNTS))
                       if self.rows else np.zeros((0, len(COUNTS)), INT))

    def select(self, scope: str, person: str) -> Groups:
        """Rows of a report scope (team | shift:X | shop:X | person:ID); person: claimer or credit."""
        if scope == "team":
            return self
        level, _, value = scope.partition(":")
        if level not in ("shift", "shop", "person"):
            return self
        i = KEY.index(person if level == "person" else level)
        return Groups([r for r in self.rows if str(r[i]) == value])

    def total(self, name: str) -> int:
        return int(self.counts[:, COUNTS.index(name)].sum())

    def _codes(self, key: str | None, rekey: Callable[[Any], Any] | None) -> tuple[list[Any], list[int]]:
        if key is None:
            return ["team"], [0] * len(self.rows)
        i = KEY.index(key)
        index: dict[Any, int] = {}
        if rekey is None:
            codes = [index.setdefault(r[i], len(index)) for r in self.rows]
        else:
            codes = [index.setdefault(rekey(r[i]), len(index)) for r in self.rows]
        return list(index), codes

    def by(self, key: str | None, names: Sequence[str], rekey: Callable[[Any], Any] | None = None
           ) -> dict[Any, list[int]]:
        """Sums of `names` per value of column `key` (None: the team), optionally re-keyed (a day → its week)."""
        keys, codes = self._codes(key, rekey)
        sums = np.zeros((len(keys), len(names)), INT)
        np.add.at(sums, np.asarray(codes, dtype=np.intp), self.counts[:, [COUNTS.index(n) for n in names]])
        return {k: [int(x) for x in sums[j]] for j, k in enumerate(keys)}

    def values(self, name: str, key: str | None = None, rekey: Callable[[Any], Any] | None = None
               ) -> dict[Any, np.ndarray]:
        """The sorted values of array column `name` per value of `key` (None: 'team'); groups
        without a value are absent."""
        i = COLUMNS.index(name)
        keys, codes = self._codes(key, rekey)
        parts: list[list[bytes]] = [[] for _ in keys]
        for code, r in zip(codes, self.rows):
            if r[i]:
                parts[code].append(r[i])
        return {keys[j]: np.sort(np.frombuffer(b"".join(p), dtype=INT)) for j, p in enumerate(parts) if p}


def median(values: np.ndarray, f: Callable[[int], float] | None = None) -> float | None:
    """stats.median of the (sorted) values, each first mapped through f: the same arithmetic."""
    n = len(values)
    if not n:
        return None
    mid = n // 2
    pick = (lambda j: int(values[j])) if f is None else (lambda j: f(int(values[j])))
    return pick(mid) if n % 2 else (pick(mid - 1) + pick(mid)) / 2


def p90(values: np.ndarray, f: Callable[[int], float] | None = None) -> float | None:
    """stats.p90 (nearest rank) of the sorted values, mapped through f."""
    n = len(values)
    if not n:
        return None
    v = int(values[max(1, math.ceil(0.9 * n)) - 1])
    return v if f is None else f(v)


def within_counts(done: np.ndarray, void: np.ndarray, open_durations: Iterable[int], limit: float
                  ) -> tuple[int, int]:
    """(good, n) of a `within` standard (measures.Obs.within): finished within the limit are good;
    finished later, or ended/still running past it, are missed; the rest are not judged yet."""
    good = int(np.searchsorted(done, limit, side="right"))
    missed = len(done) - good + len(void) - int(np.searchsorted(void, limit, side="right"))
    missed += sum(1 for d in open_durations if d > limit)
    return good, good + missed
