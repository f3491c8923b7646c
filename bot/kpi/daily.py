"""Daily groups of the KPI read model (table kpi_daily): the reminder facts of one shop-local day
summed per (shop, shift, claimer, credited person), with the exact values behind every median and
P90 kept as sorted arrays (so a median over a year is exact, not a median of medians), and the
aggregation of a period's groups into the report's figures. Plain data; no SQL.

A year of reminders (~150k) is ~30k groups: the report adds counts and merges sorted arrays per
level instead of working through every reminder.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

#: kpi_daily columns after (day, shop, shift, claimer, credit); *_v are sorted int arrays (bytes)
COUNTS = ("n", "escalated", "snoozed", "before", "pushed", "acted", "open", "decided", "paid", "cents",
          "cents_acted", "unacted", "unacted_paid", "acted_paid", "warned", "saved", "warn_open")
ARRAYS = ("claim_v", "done_v", "pc_done_work_v", "pc_done_wall_v", "pc_void_work_v", "pc_void_wall_v",
          "pay_delta_v")
KEY = ("day", "shop", "shift", "claimer", "credit")
COLUMNS = KEY + COUNTS + ARRAYS
#: kpi_reminder_facts columns read to build the groups (bot/kpi/facts.py Fact)
FACT_READ = ("day", "shop", "shift", "claimer", "credit", "claim_s", "done_s", "escalated", "snoozed", "pc_end",
             "pc_work", "pc_wall", "pay", "acted", "paid", "cents", "pay_delta", "warn", "warn_ok")


def pack(values: list[int]) -> bytes:
    return array("q", sorted(values)).tobytes()


def unpack(blob: bytes | None) -> array:
    out = array("q")
    if blob:
        out.frombytes(blob)
    return out


def build(facts: Iterable[Sequence[Any]]) -> list[tuple]:
    """kpi_daily rows from fact rows (FACT_READ order)."""
    groups: dict[tuple, tuple[list[int], list[list[int]]]] = {}
    for (day, shop, shift, claimer, credit, claim_s, done_s, escalated, snoozed, pc_end, pc_work, pc_wall, pay,
         acted, paid, cents, pay_delta, warn, warn_ok) in facts:
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
    return [(*key, *c, *(pack(x) for x in v)) for key, (c, v) in groups.items()]


class Groups:
    """A period's kpi_daily rows (COLUMNS order, arrays still packed) and what the report asks of them."""

    def __init__(self, rows: Sequence[Sequence[Any]]) -> None:
        self.rows = rows
        self._index = {name: i for i, name in enumerate(COLUMNS)}

    def col(self, name: str) -> int:
        return self._index[name]

    def select(self, scope: str, person: str) -> Groups:
        """Rows of a report scope (team | shift:X | shop:X | person:ID); person: claimer or credit."""
        if scope == "team":
            return self
        level, _, value = scope.partition(":")
        if level not in ("shift", "shop", "person"):
            return self
        i = self.col(person if level == "person" else level)
        return Groups([r for r in self.rows if str(r[i]) == value])

    def total(self, name: str) -> int:
        i = self.col(name)
        return sum(r[i] for r in self.rows)

    def by(self, key: str, names: Sequence[str]) -> dict[Any, list[int]]:
        """Sums of `names` per value of column `key` (day, week via day, shift, shop, claimer, credit)."""
        k = self.col(key)
        idx = [self.col(n) for n in names]
        out: dict[Any, list[int]] = {}
        for r in self.rows:
            acc = out.get(r[k])
            if acc is None:
                acc = out[r[k]] = [0] * len(idx)
            for j, i in enumerate(idx):
                acc[j] += r[i]
        return out

    def values(self, name: str, key: str | None = None, *, rekey: Any = None) -> dict[Any, list[int]]:
        """The sorted values of array column `name`, per value of `key` (None: one group 'team')."""
        i = self.col(name)
        k = None if key is None else self.col(key)
        parts: dict[Any, list[bytes]] = defaultdict(list)
        for r in self.rows:
            if r[i]:
                group = "team" if k is None else r[k]
                if rekey is not None:
                    group = rekey(group)
                parts[group].append(r[i])
        return {g: sorted(unpack(b"".join(blobs))) for g, blobs in parts.items()}

    def keyed(self, key: str, rekey: Any) -> Groups:
        """The same rows with column `key` replaced through rekey (a day → its week)."""
        k = self.col(key)
        return Groups([(*r[:k], rekey(r[k]), *r[k + 1:]) for r in self.rows])


def within_counts(done: Sequence[int], void: Sequence[int], open_durations: Iterable[int], limit: float
                  ) -> tuple[int, int]:
    """(good, n) of a `within` standard (measures.Obs.within): finished within the limit are good;
    finished later, or ended/still running past it, are missed; the rest are not judged yet."""
    good = bisect_right(done, limit)
    missed = len(done) - good + len(void) - bisect_right(void, limit)
    missed += sum(1 for d in open_durations if d > limit)
    return good, good + missed
