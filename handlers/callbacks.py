"""Button callback data: one codec for every button the bot sends.

Each button kind is a `ButtonKind`: its prefix (the first `:`-separated word), the minimum role
that may press it and the actions that also work in the team chat. Declaring a kind registers its
role in the access table (bot/access.py, default-deny: an undeclared prefix is refused for
everybody), so the prefix lives in one place. `pack` builds the data and enforces Telegram's
64-byte limit; `parse` splits it and never raises: bad or foreign data gives None, which the
handler answers with "button expired".

Features open each other's screens through the kinds' named builders here (`order_card`,
`open_script`), never by writing another feature's data by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import access
from bot.people import Role

#: Telegram's limit for callback_data, in bytes (UTF-8).
LIMIT = 64
#: The largest id a button may carry (SQLite INTEGER); a longer number is forged or foreign data.
ID_MAX = 2**63 - 1


def numbers_in_range(data: str | None) -> bool:
    """False when a numeric field of `data` is beyond ID_MAX (e.g. a forged 20-digit id, which
    would raise OverflowError in SQLite) or is made of non-ASCII digits ('¹' passes str.isdigit
    but not int()): the guard answers such a press as an expired button."""
    for field in (data or "").split(":"):
        if field.isdigit() and (not field.isascii() or len(field) > 19 or int(field) > ID_MAX):
            return False
    return True


class CallbackTooLong(ValueError):
    """Packed data over 64 bytes: a bug in the caller (use `fits` when the value may be long)."""


@dataclass(frozen=True)
class ButtonKind:
    prefix: str
    min_role: Role
    #: Actions ("" for every action) that may be pressed on the bot's own posts in the team chat.
    team_chat: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        access.declare_button(self.prefix, self.min_role, self.team_chat)

    @property
    def pattern(self) -> str:
        """The CallbackQueryHandler pattern for this kind."""
        return rf"^{self.prefix}:"

    def pack(self, *fields: object) -> str:
        return checked(":".join([self.prefix, *(str(f) for f in fields)]))

    def fits(self, *fields: object) -> str | None:
        """`pack`, or None when the data would not fit in 64 bytes (the caller leaves the button out)."""
        try:
            return self.pack(*fields)
        except CallbackTooLong:
            return None

    def parse(self, data: str | None, *, min_fields: int = 1, max_fields: int | None = None) -> list[str] | None:
        """The fields after the prefix, or None for data of another kind or the wrong length."""
        parts = (data or "").split(":")
        if parts[0] != self.prefix or not numbers_in_range(data):
            return None
        fields = parts[1:]
        if len(fields) < min_fields or (max_fields is not None and len(fields) > max_fields):
            return None
        return fields


def checked(data: str) -> str:
    """`data` itself, or CallbackTooLong when it is over Telegram's 64 bytes."""
    if len(data.encode()) > LIMIT:
        raise CallbackTooLong(f"callback data over {LIMIT} bytes: {data!r}")
    return data


# --- every button kind of the bot ------------------------------------------------------------------
TEAM = ButtonKind("team", Role.SUPERVISOR)  # /agents paging and actions
KB = ButtonKind("kb", Role.AGENT)  # script menu, copies, related scripts
FLOW = ButtonKind("flow", Role.AGENT)  # /aftersale guided flow
ORDER = ButtonKind("ord", Role.AGENT)  # order card buttons
REMINDER = ButtonKind("rem", Role.AGENT, team_chat=("take", "claim"))  # 接手 / 我来处理 on team-chat digests
HANDOVER = ButtonKind("ho", Role.AGENT)  # handover items
BROADCAST = ButtonKind("bc", Role.SUPERVISOR)  # broadcast composing and rosters
ACK = ButtonKind("ack", Role.AGENT, team_chat=("",))  # 收到 on an announcement
SCHEDULE = ButtonKind("sch", Role.SUPERVISOR)  # scheduled announcements
#: 售后登记: cards and approvals (handlers/cases.py re-checks the party); 登记售后 also on the
#: reminders posted in the team chat (the card then goes to the presser in private).
CASE = ButtonKind("case", Role.AGENT, team_chat=("new",))


def new_case(source: str, ref: str = "", order_no: str | None = None) -> str:
    """`case:new:<src>:<ref>[:<order>]`: open a case from a script (s), an order card (o) or a
    reminder (r); the order number is left out when it would not fit."""
    data = CASE.pack("new", source, ref)
    if order_no:
        return CASE.fits("new", source, ref, order_no) or data
    return data
KPI = ButtonKind("kpi", Role.AGENT)  # /kpi: the same report as XLSX or chart (filtered for the presser)


# --- screens other features open ---------------------------------------------------------------------
def order_card(order_no: str, platform: str | None = None) -> str | None:
    """`ord:card:[<platform>:]<order_no>`: the order card (None if it would not fit)."""
    return ORDER.fits("card", platform, order_no) if platform else ORDER.fits("card", order_no)


def parse_order_card(data: str | None, platforms: tuple[str, ...] | frozenset[str]) -> tuple[str | None, str]:
    """(platform or None, order number) from an order-card button; ("", …) parts when it is not one."""
    fields = ORDER.parse(data, min_fields=2)
    if fields is None or fields[0] != "card":
        return None, ""
    rest = ":".join(fields[1:])
    platform, sep, number = rest.partition(":")
    if sep and platform in platforms:
        return platform, number
    return None, rest


def open_script(script_id: str, order_no: str | None = None, source: str = "x") -> str:
    """`kb:o:<src>:<script>[:<order>]`: a script as a new message, filled with the order when it fits."""
    data = KB.pack("o", source, script_id)
    if order_no:
        return KB.fits("o", source, script_id, order_no) or data
    return data


def reminder_card(reminder_id: int) -> str:
    """`rem:open:<id>`: a reminder's full card in the presser's private chat."""
    return REMINDER.pack("open", reminder_id)


def handover_item(item_id: int) -> str:
    """`ho:view:<id>`: a handover item's history."""
    return HANDOVER.pack("view", item_id)
