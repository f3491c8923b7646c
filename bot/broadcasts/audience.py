"""Who a broadcast goes to: an audience spec, stored as a short string, and its resolution
against the team at the moment of sending (a shift or "on duty now" means who is on then)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from bot.people import Person, Role, UserError
from bot.shifts import Shift, shifts_on

KINDS = ("all", "duty", "shift", "role", "people")


@dataclass(frozen=True)
class Audience:
    """everyone | on duty now | one shift | one role (exactly that role) | chosen people."""

    kind: str
    value: str = ""
    people: tuple[int, ...] = ()

    def encode(self) -> str:
        if self.kind in ("shift", "role"):
            return f"{self.kind}:{self.value}"
        if self.kind == "people":
            return "people:" + ",".join(str(i) for i in self.people)
        return self.kind

    @classmethod
    def decode(cls, text: str) -> Audience:
        kind, _, value = text.partition(":")
        if kind not in KINDS:
            raise ValueError(f"unknown audience {text!r}")
        if kind == "people":
            return cls("people", people=tuple(int(i) for i in value.split(",") if i))
        return cls(kind, value)

    @property
    def complete(self) -> bool:
        """A chosen-people audience needs at least one person before the dialogue moves on."""
        return self.kind != "people" or bool(self.people)

    def toggled(self, tg_id: int) -> Audience:
        ids = [i for i in self.people if i != tg_id]
        if len(ids) == len(self.people):
            ids.append(tg_id)
        return Audience("people", people=tuple(ids))


def validate(audience: Audience, shifts: Sequence[Shift]) -> Audience:
    """Refuse specs that name a shift or role that does not exist (callback data is forgeable)."""
    if audience.kind == "shift" and audience.value not in {s.name for s in shifts}:
        raise UserError("bad_audience")
    if audience.kind == "role" and audience.value not in {r.code for r in Role}:
        raise UserError("bad_audience")
    return audience


def select_recipients(
    people: Iterable[Person],
    audience: Audience,
    shifts: Sequence[Shift],
    moment: datetime,
    tz: tzinfo,
    *,
    exclude: Iterable[int] = (),
) -> list[Person]:
    """The active people the audience means at this moment, minus `exclude` (the author)."""
    excluded = set(exclude)
    active = [p for p in people if p.active and p.tg_id not in excluded]
    if audience.kind == "all":
        return active
    if audience.kind == "duty":
        working = set(shifts_on(shifts, moment, tz))
        return [p for p in active if p.shift in working]
    if audience.kind == "shift":
        return [p for p in active if p.shift == audience.value]
    if audience.kind == "role":
        return [p for p in active if p.role.code == audience.value]
    chosen = set(audience.people)
    return [p for p in active if p.tg_id in chosen]
