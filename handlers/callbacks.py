"""Button callback data: one codec for every button the bot sends.

Each prefix (the first `:`-separated word) is a `ButtonKind`: the minimum role that may press it
and the actions that also work in the team chat. Declaring a kind registers its role in the access
table (bot/access.py, default-deny: an undeclared prefix is refused for everybody), so the prefix
lives in one place.

Each button of a kind is a small frozen dataclass deriving from `Button`, declared here with its
layout (`class HoTake(Button, kind=HANDOVER, layout="take:{item_id:id}:{source?}")`): its fields
are the dataclass fields (Button makes each subclass a dataclass; no decorator). `HoTake(5).pack()` builds the data and enforces Telegram's 64-byte
limit (`fits` leaves the button out, `shortened` drops trailing optional fields that do not fit);
`HANDOVER.decode(data)` gives back the typed button, or None for bad, foreign or forged data
(which the handler answers with "button expired"), never an exception. Layout tokens:
`word` a literal, `{name}` a text field (no `:`), `{name:id}` a number (ASCII digits, at most
ID_MAX), a trailing `?` an optional field (left off when None), a trailing `*` the rest of the
data, `:` included (last field only).

Handlers register `kind.pattern` (or a button's `pattern`) and dispatch on the decoded class;
features open each other's screens by building the other feature's button class here.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

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
    for part in (data or "").split(":"):
        if part.isdigit() and (not part.isascii() or len(part) > 19 or int(part) > ID_MAX):
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
    #: The `Button` classes of this kind, in declaration order (filled by `Button.__init_subclass__`).
    buttons: list[type[Button]] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        access.declare_button(self.prefix, self.min_role, self.team_chat)

    def decode(self, data: str | None) -> Button | None:
        """The typed button `data` was packed from, or None (another kind, a removed button,
        forged or malformed data)."""
        for button in self.buttons:
            pressed = button.parse(data)
            if pressed is not None:
                return pressed
        return None

    @property
    def pattern(self) -> str:
        """The CallbackQueryHandler pattern for this kind (the handler then `decode`s)."""
        return rf"^{self.prefix}:"


@dataclass(frozen=True)
class _Slot:
    name: str
    number: bool = False
    optional: bool = False
    rest: bool = False


_SLOT = re.compile(r"^\{(\w+)(:id)?([?*]?)\}$")


def _token(text: str) -> str | _Slot:
    match = _SLOT.match(text)
    if match is None:
        if "{" in text or "}" in text or not text:
            raise ValueError(f"bad layout token {text!r}")
        return text
    name, number, mark = match.groups()
    return _Slot(name, number=bool(number), optional=mark == "?", rest=mark == "*")


class Button:
    """One kind of button: subclass it with `kind=` and `layout=` and declare its fields as in a
    dataclass (no field may be called `kind` or `layout`); field values are handed to the feature's
    handler in order. Each subclass becomes a frozen dataclass (`dataclasses.fields`/`replace` work;
    equal and hashed by value; assigning raises FrozenInstanceError) whose methods are these shared
    ones: `@dataclass(frozen=True)` compiles six methods per class, ~35 ms of every cold start for
    the 65 buttons (issue 13)."""

    kind: ClassVar[ButtonKind]
    layout: ClassVar[tuple[str | _Slot, ...]]
    #: The fields' names in order, and the defaults of those that have one (set per button).
    _names: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, *, kind: ButtonKind | None = None, layout: str = "", **rest: Any) -> None:
        super().__init_subclass__(**rest)
        if kind is None:  # a shared base of some buttons, not a button itself
            return
        fields = dataclasses.fields(dataclass(init=False, repr=False, eq=False)(cls))
        if any(f.default_factory is not dataclasses.MISSING for f in fields):
            raise TypeError(f"{cls.__name__}: button fields take plain defaults")
        cls._names = tuple(f.name for f in fields)
        cls._defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
        tokens = tuple(_token(t) for t in re.split(r":(?![^{]*\})", layout)) if layout else ()
        slots = [t for t in tokens if isinstance(t, _Slot)]
        for index, slot in enumerate(slots):
            later = slots[index + 1:]
            if slot.optional and not all(s.optional for s in later):
                raise ValueError(f"{cls.__name__}: only trailing fields may be optional")
            if slot.rest and later:
                raise ValueError(f"{cls.__name__}: only the last field may take the rest")
        cls.kind, cls.layout = kind, tokens
        kind.buttons.append(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        name = type(self).__name__
        if len(args) > len(self._names):
            raise TypeError(f"{name} takes {len(self._names)} values, {len(args)} given")
        values = dict(zip(self._names, args))
        for field_name, value in kwargs.items():
            if field_name not in self._names or field_name in values:
                raise TypeError(f"{name} got an unexpected or repeated value for {field_name!r}")
            values[field_name] = value
        for field_name in self._names:
            if field_name in values:
                object.__setattr__(self, field_name, values[field_name])
            elif field_name in self._defaults:
                object.__setattr__(self, field_name, self._defaults[field_name])
            else:
                raise TypeError(f"{name} needs a value for {field_name!r}")
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, field_name) for field_name in self._names)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()  # type: ignore[attr-defined]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{field_name}={getattr(self, field_name)!r}" for field_name in self._names)
        return f"{self.__class__.__qualname__}({fields})"

    @classmethod
    def pattern(cls) -> str:
        """A CallbackQueryHandler pattern that matches this button's data (and not its siblings')."""
        words = [cls.kind.prefix]
        for token in cls.layout:
            if isinstance(token, _Slot):
                return "^" + re.escape(":".join(words)) + ":"
            words.append(token)
        return "^" + re.escape(":".join(words)) + "$"

    def pack(self) -> str:
        """The callback data; CallbackTooLong over 64 bytes (a bug: use `fits` or `shortened`)."""
        parts = [type(self).kind.prefix]
        for token in self.layout:
            if not isinstance(token, _Slot):
                parts.append(token)
                continue
            value = getattr(self, token.name)
            if value is None:
                if not token.optional:
                    raise ValueError(f"{type(self).__name__}.{token.name} is required")
                break
            text = str(value)
            if not token.rest and ":" in text:
                raise ValueError(f"{type(self).__name__}.{token.name} may not contain ':'")
            parts.append(text)
        return checked(":".join(parts))

    def fits(self) -> str | None:
        """`pack`, or None when it would not fit in 64 bytes (the caller leaves the button out)."""
        try:
            return self.pack()
        except CallbackTooLong:
            return None

    def shortened(self) -> str:
        """`pack`, leaving off trailing optional fields (e.g. an order number) that do not fit."""
        current = self
        optional = [t.name for t in self.layout if isinstance(t, _Slot) and t.optional]
        while True:
            data = current.fits()
            if data is not None or not optional:
                return data if data is not None else current.pack()
            current = dataclasses.replace(current, **{optional.pop(): None})

    @classmethod
    def parse(cls, data: str | None) -> Self | None:
        """This button from its data, or None when `data` is not (or no longer) one of these."""
        try:
            if len((data or "").encode()) > LIMIT:  # not from Telegram: its data is at most 64 bytes
                return None
        except UnicodeEncodeError:  # a lone surrogate: not text Telegram sends
            return None
        parts = (data or "").split(":")
        if parts[0] != cls.kind.prefix or not numbers_in_range(data):
            return None
        parts, values = parts[1:], {}
        for token in cls.layout:
            if not isinstance(token, _Slot):
                if not parts or parts[0] != token:
                    return None
                parts = parts[1:]
                continue
            if not parts:
                if not token.optional:
                    return None
                values[token.name] = None
                continue
            if token.rest:
                text, parts = ":".join(parts), []
            else:
                text, parts = parts[0], parts[1:]
            if token.number:
                if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= ID_MAX):
                    return None
                values[token.name] = int(text)
            else:
                values[token.name] = text
        if parts:
            return None
        try:
            return cls(**values)
        except (TypeError, ValueError):
            return None


def checked(data: str) -> str:
    """`data` itself, or CallbackTooLong when it is over Telegram's 64 bytes."""
    if len(data.encode()) > LIMIT:
        raise CallbackTooLong(f"callback data over {LIMIT} bytes: {data!r}")
    return data


# --- every button kind of the bot ------------------------------------------------------------------
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


KPI = ButtonKind("kpi", Role.AGENT)  # /kpi: the same report as XLSX or chart (filtered for the presser)


def _one_of(value: str, allowed: tuple[str, ...]) -> None:
    """For `__post_init__`: a field that only takes some words (anything else is not this button)."""
    if value not in allowed:
        raise ValueError(value)


# --- kb: scripts (handlers/scripts.py) --------------------------------------------------------------
class KbMenu(Button, kind=KB, layout="m:{order_no?}"):
    """The category menu (edits the message)."""

    order_no: str | None = None


class KbCategory(Button, kind=KB, layout="c:{code}:{order_no?}"):
    """The scripts of one category (edits the message)."""

    code: str
    order_no: str | None = None


class KbOpen(Button, kind=KB, layout="o:{source}:{script_id}:{order_no?}"):
    """A script as a new message, filled with the order when given; `source` says where it was
    opened from, for the usage stats. Build it with `shortened()` (the order is left out when it
    would not fit)."""

    source: str
    script_id: str
    order_no: str | None = None


class KbOpenOld(Button, kind=KB, layout="open:{script_id}:{order_no?}"):
    """Still accepted (buttons already sent); built nowhere any more."""

    script_id: str
    order_no: str | None = None


class KbUsed(Button, kind=KB, layout="u:{script_id}"):
    """用了这条: counts one copy and removes that button."""

    script_id: str


# --- flow: /aftersale guided flows (handlers/scripts.py) ------------------------------------------
class FlowMenu(Button, kind=FLOW, layout="m"):
    """The stage menu."""


class FlowStep(Button, kind=FLOW, layout="g:{flow_id}:{path*}"):
    """A node of a flow: `path` is the chosen choice indices from the start, one character each,
    so "back" is the path minus one."""

    flow_id: str
    path: str = ""


# --- ord: order cards (handlers/orders.py) -------------------------------------------------------------
class OrderCard(Button, kind=ORDER, layout="card:{ref*}"):
    """`ord:card:[<platform>:]<order_no>`: the order card."""

    ref: str


# --- ho: the handover book (handlers/handover.py) -----------------------------------------------------
class HoNew(Button, kind=HANDOVER, layout="new"):
    """写交接: start writing an item."""


class HoPendingKind(Button, kind=HANDOVER, layout="pk:{code}"):
    """The kind chosen for the item being written."""

    code: str


class HoKind(Button, kind=HANDOVER, layout="kind:{item_id:id}:{code}"):
    """Change a written item's kind."""

    item_id: int
    code: str


class HoEdit(Button, kind=HANDOVER, layout="edit:{item_id:id}"):
    item_id: int


class HoWithdraw(Button, kind=HANDOVER, layout="wd:{item_id:id}"):
    """撤回: asks to confirm."""

    item_id: int


class HoWithdrawYes(Button, kind=HANDOVER, layout="wdy:{item_id:id}"):
    item_id: int


class HoWithdrawNo(Button, kind=HANDOVER, layout="wdn:{item_id:id}"):
    item_id: int


class HoTake(Button, kind=HANDOVER, layout="take:{item_id:id}:{source?}"):
    """接手; `source` "l" when pressed on a list (the list is refreshed, not the item)."""

    item_id: int
    source: str | None = None


class HoResolve(Button, kind=HANDOVER, layout="res:{item_id:id}"):
    item_id: int


class HoResolveNoNote(Button, kind=HANDOVER, layout="rsn:{item_id:id}"):
    item_id: int


class HoView(Button, kind=HANDOVER, layout="view:{item_id:id}"):
    """An item's history."""

    item_id: int


class HoAttachment(Button, kind=HANDOVER, layout="att:{item_id:id}"):
    item_id: int


# --- bc: composing broadcasts, rosters (handlers/broadcasts.py) ---------------------------------------
class BcAudience(Button, kind=BROADCAST, layout="{broadcast_id:id}:a:{choice}:{role?}"):
    """The audience step: all, duty, s<shift index>, r (roles; with `role` one role), p (pick), back."""

    broadcast_id: int
    choice: str
    role: str | None = None


class BcPick(Button, kind=BROADCAST, layout="{broadcast_id:id}:pk:{tg_id:id}:{page:id}"):
    """Toggle one person in the picker (on page `page`)."""

    broadcast_id: int
    tg_id: int
    page: int


class BcPage(Button, kind=BROADCAST, layout="{broadcast_id:id}:pg:{page:id}"):
    broadcast_id: int
    page: int


class BcPickDone(Button, kind=BROADCAST, layout="{broadcast_id:id}:pd"):
    broadcast_id: int


#: The yes/no steps: button code -> the draft's choice.
BC_CHOICES = {"ack": "ack_required", "urg": "urgent", "pin": "pin", "sil": "silent"}


class BcChoice(Button, kind=BROADCAST, layout="{broadcast_id:id}:{code}:{yes}"):
    """A yes/no step (`code` a key of BC_CHOICES, `yes` "1" or "0")."""

    broadcast_id: int
    code: str
    yes: str

    def __post_init__(self) -> None:
        _one_of(self.code, tuple(BC_CHOICES))
        _one_of(self.yes, ("1", "0"))


class BcQuick(Button, kind=BROADCAST, layout="{broadcast_id:id}:qk"):
    """Everyone, 收到 required, normal, ringing: the common case in one tap."""

    broadcast_id: int


class BcRedo(Button, kind=BROADCAST, layout="{broadcast_id:id}:redo"):
    broadcast_id: int


class BcCancel(Button, kind=BROADCAST, layout="{broadcast_id:id}:x"):
    broadcast_id: int


class BcGo(Button, kind=BROADCAST, layout="{broadcast_id:id}:go"):
    """发送 (or 保存 for a schedule)."""

    broadcast_id: int


class BcRoster(Button, kind=BROADCAST, layout="{broadcast_id:id}:ros:{refresh?}"):
    """Who pressed 收到; with `refresh` ("r") the roster message is edited in place."""

    broadcast_id: int
    refresh: str | None = None


class BcRemind(Button, kind=BROADCAST, layout="{broadcast_id:id}:rem"):
    """Remind everyone who has not pressed 收到."""

    broadcast_id: int


# --- ack: 收到 on an announcement --------------------------------------------------------------------
class Ack(Button, kind=ACK, layout="{broadcast_id:id}"):
    broadcast_id: int


# --- sch: scheduled announcements ------------------------------------------------------------------
class ScheduleAction(Button, kind=SCHEDULE, layout="{schedule_id:id}:{action}"):
    """p pause, r resume, d ask to delete, dd delete; `sch:0:list` back to the list."""

    schedule_id: int
    action: str

    def __post_init__(self) -> None:
        _one_of(self.action, ("p", "r", "d", "dd", "list"))


# --- rem: reminders (handlers/reminders.py; orders and kpi offer 我来处理 / the card) -------------------
class Reminder(Button):
    """The reminder buttons: each names a reminder (`rid`); `arg` is the choice some carry."""

    rid: int

    @property
    def arg(self) -> str:
        return ""


class RemClaim(Reminder, kind=REMINDER, layout="claim:{rid:id}"):
    """我来处理 (also in the team chat)."""

    rid: int


class RemTake(Reminder, kind=REMINDER, layout="take:{rid:id}"):
    """接手 on a team-chat digest (also in the team chat)."""

    rid: int


class RemOpen(Reminder, kind=REMINDER, layout="open:{rid:id}"):
    """A reminder's full card in the presser's private chat."""

    rid: int


class RemDone(Reminder, kind=REMINDER, layout="done:{rid:id}"):
    """已处理: shows the outcomes."""

    rid: int


class RemSnooze(Reminder, kind=REMINDER, layout="snooze:{rid:id}"):
    """稍后: shows the snooze choices."""

    rid: int


class RemScript(Reminder, kind=REMINDER, layout="script:{rid:id}"):
    """查看话术."""

    rid: int


class RemBack(Reminder, kind=REMINDER, layout="back:{rid:id}"):
    rid: int


class RemOutcome(Reminder, kind=REMINDER, layout="out:{rid:id}:{code}"):
    """One outcome (`code`, e.g. "paid", "nax")."""

    rid: int
    code: str

    @property
    def arg(self) -> str:
        return self.code


class RemLater(Reminder, kind=REMINDER, layout="later:{rid:id}:{when}"):
    """Snooze for 1h, 3h or to the next shift."""

    rid: int
    when: str

    @property
    def arg(self) -> str:
        return self.when


# --- kpi: the report as a file ---------------------------------------------------------------------
class KpiFile(Button, kind=KPI, layout="{fmt}:{first}:{last}"):
    """The same report for the presser as XLSX (`fmt` "x") or chart ("c"), ISO dates."""

    fmt: str
    first: str
    last: str

    def __post_init__(self) -> None:
        _one_of(self.fmt, ("x", "c"))


# --- case: 售后登记 (handlers/cases.py) -------------------------------------------------------------
class CaseNew(Button, kind=CASE, layout="new:{source}:{ref}:{order_no?}"):
    """登记售后 from a script (s, ref the script id), an order card (o, ref the order) or a reminder (r, ref its id); `order_no` is left out when it would not fit (`shortened`)."""

    source: str
    ref: str
    order_no: str | None = None


class CaseView(Button, kind=CASE, layout="v:{no:id}"):
    """A case's card."""

    no: int


class CaseEvidenceDone(Button, kind=CASE, layout="evd:{no:id}"):
    no: int


class CaseAddEvidence(Button, kind=CASE, layout="ev:{no:id}"):
    no: int


class CaseShowEvidence(Button, kind=CASE, layout="evs:{no:id}"):
    no: int


class CaseNote(Button, kind=CASE, layout="note:{no:id}"):
    no: int


class CaseEdit(Button, kind=CASE, layout="ed:{no:id}"):
    no: int


class CaseField(Button, kind=CASE, layout="f:{no:id}:{field}"):
    """Edit one field."""

    no: int
    field: str


class CaseSet(Button, kind=CASE, layout="set:{no:id}:{field}:{code}"):
    """One choice for a field."""

    no: int
    field: str
    code: str


class CaseMove(Button, kind=CASE, layout="mv:{no:id}:{state}"):
    """Move the case to another state."""

    no: int
    state: str


class CaseHistory(Button, kind=CASE, layout="his:{no:id}"):
    no: int


class CaseReopen(Button, kind=CASE, layout="reo:{no:id}"):
    no: int


class CaseSubmit(Button, kind=CASE, layout="sub:{no:id}"):
    """Ask for approval."""

    no: int


class CaseMark(Button, kind=CASE, layout="mark:{no:id}"):
    no: int


class CaseApprove(Button, kind=CASE, layout="ok:{aid:id}"):
    """An approval: 同意."""

    aid: int


class CaseReject(Button, kind=CASE, layout="no:{aid:id}"):
    """An approval: 不同意 (asks the reason)."""

    aid: int


class CaseRejectReason(Button, kind=CASE, layout="rr:{aid:id}:{index:id}"):
    aid: int
    index: int


class CaseRejectTyped(Button, kind=CASE, layout="rt:{aid:id}"):
    aid: int


class CaseWithdraw(Button, kind=CASE, layout="wd:{no:id}"):
    no: int


class CaseNudge(Button, kind=CASE, layout="ndg:{no:id}"):
    """催办."""

    no: int


class CaseTransfer(Button, kind=CASE, layout="tr:{aid:id}"):
    aid: int


class CaseTransferTo(Button, kind=CASE, layout="to:{aid:id}:{tg_id:id}"):
    aid: int
    tg_id: int


def new_case(source: str, ref: object = "", order_no: str | None = None) -> str:
    """`case:new:<src>:<ref>[:<order>]`: open a case from a script (s), an order card (o) or a
    reminder (r); the order number is left out when it would not fit."""
    return CaseNew(source, str(ref), order_no or None).shortened()


# --- screens other features open ---------------------------------------------------------------------
def order_card(order_no: str, platform: str | None = None) -> str | None:
    """`ord:card:[<platform>:]<order_no>`: the order card (None if it would not fit)."""
    return OrderCard(f"{platform}:{order_no}" if platform else order_no).fits()


def parse_order_card(data: str | None, platforms: tuple[str, ...] | frozenset[str]) -> tuple[str | None, str]:
    """(platform or None, order number) from an order-card button; ("", …) parts when it is not one."""
    card = OrderCard.parse(data)
    if card is None or not card.ref:
        return None, ""
    platform, sep, number = card.ref.partition(":")
    if sep and platform in platforms:
        return platform, number
    return None, card.ref


def open_script(script_id: str, order_no: str | None = None, source: str = "x") -> str:
    """`kb:o:<src>:<script>[:<order>]`: a script as a new message, filled with the order when it fits."""
    return KbOpen(source, script_id, order_no or None).shortened()


def reminder_card(reminder_id: int) -> str:
    """`rem:open:<id>`: a reminder's full card in the presser's private chat."""
    return RemOpen(reminder_id).pack()


def handover_item(item_id: int) -> str:
    """`ho:view:<id>`: a handover item's history."""
    return HoView(item_id).pack()
