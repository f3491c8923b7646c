"""Who may do what: the one declarative table of commands, buttons and message kinds.

The Telegram guard (handlers/guard.py) consults only this module. A command or button that is
not listed here is refused for everybody, so a new feature cannot forget to declare its rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.people import Role

PUBLIC = None  # reachable by strangers (only /start, which handles invitations itself)


@dataclass(frozen=True)
class CommandRule:
    min_role: Role | None
    menu: bool = True  # listed in /help and the Telegram command menu
    alias_of: str | None = None


COMMANDS: dict[str, CommandRule] = {
    "start": CommandRule(PUBLIC, menu=False),
    "help": CommandRule(Role.AGENT),
    "me": CommandRule(Role.AGENT),
    "cancel": CommandRule(Role.AGENT, menu=False),
    # 话术
    "s": CommandRule(Role.AGENT),
    "script": CommandRule(Role.AGENT, menu=False, alias_of="s"),
    "aftersale": CommandRule(Role.AGENT),
    # 订单与提醒
    "order": CommandRule(Role.AGENT),
    "reminders": CommandRule(Role.AGENT),
    # 交接本
    "handover": CommandRule(Role.AGENT),
    "jj": CommandRule(Role.AGENT, menu=False, alias_of="handover"),
    "handovers": CommandRule(Role.AGENT),
    # 售后登记
    "case": CommandRule(Role.AGENT),
    "sh": CommandRule(Role.AGENT, menu=False, alias_of="case"),
    "cases": CommandRule(Role.AGENT),
    # 服务指标（主管看团队、班次和每个人；客服看团队和自己）
    "kpi": CommandRule(Role.AGENT),
    # 主管
    "agents": CommandRule(Role.SUPERVISOR),
    "invite": CommandRule(Role.SUPERVISOR),
    "setshift": CommandRule(Role.SUPERVISOR),
    "kb_reload": CommandRule(Role.SUPERVISOR),
    "kb_stats": CommandRule(Role.SUPERVISOR),
    "handover_stats": CommandRule(Role.SUPERVISOR),
    "standards": CommandRule(Role.SUPERVISOR),
    "broadcast": CommandRule(Role.SUPERVISOR),
    "broadcasts": CommandRule(Role.SUPERVISOR),
    "schedule": CommandRule(Role.SUPERVISOR),
    "schedules": CommandRule(Role.SUPERVISOR),
    # 管理员
    "setrole": CommandRule(Role.ADMIN),
    "deactivate": CommandRule(Role.ADMIN),
    "activate": CommandRule(Role.ADMIN),
}

#: Button callback data is "<prefix>:<args>"; the prefix decides the minimum role. The button kinds
#: are declared once, in handlers/callbacks.py, which fills these two tables through
#: `declare_button` (so a prefix, its role and its builder live together). Handlers re-check
#: anything finer (e.g. that a handover item is still open).
BUTTONS: dict[str, Role] = {}

#: Buttons that work in the team chat (KEFU_TEAM_CHAT_ID), on the bot's own posts there, pressed by
#: registered people: "<prefix>" or "<prefix>:<action>". Everything else is for private chats only:
#: it would show or change someone's own work, or answer with data in front of the group.
TEAM_CHAT_BUTTONS: set[str] = set()


def declare_button(prefix: str, min_role: Role, team_chat: tuple[str, ...] = ()) -> None:
    """Register a button kind: its minimum role and the actions ("" = all) allowed in the team chat."""
    if BUTTONS.get(prefix, min_role) != min_role:
        raise ValueError(f"button prefix {prefix!r} declared twice with different roles")
    BUTTONS[prefix] = min_role
    TEAM_CHAT_BUTTONS.update(f"{prefix}:{action}" if action else prefix for action in team_chat)


#: What the guard decides on. Update kinds (the field of the Update that is set) ...
UPDATE_KINDS = (
    "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
    "business_message", "edited_business_message", "deleted_business_messages", "callback_query",
    "inline_query", "chosen_inline_result", "my_chat_member", "chat_member", "chat_join_request", "other",
)
#: ... and chat kinds: the bot's private chat with the sender, the configured team chat, any other
#: group or supergroup, a channel, or no chat at all (inline queries).
CHAT_KINDS = ("private", "team", "group", "channel", "none")

#: The only (update kind, chat kind) pairs served, and then only for a human sender (no bot
#: account, no `sender_chat`, no `via_bot`) who is a registered, active person (except /start).
#: Every other pair is refused without data or ignored.
SERVED: frozenset[tuple[str, str]] = frozenset({
    ("message", "private"),  # commands, conversation replies, order exports, attachments
    ("callback_query", "private"),  # buttons under the bot's messages in the private chat
    ("callback_query", "team"),  # only TEAM_CHAT_BUTTONS
    ("inline_query", "none"),  # @bot <text>: script search, for registered people
    ("chosen_inline_result", "none"),  # statistics of the script chosen inline
    ("my_chat_member", "private"),  # the person blocked / unblocked the bot
})

#: Non-command input.
DOCUMENT_MIN_ROLE = Role.AGENT  # order exports, handover attachments
TEXT_MIN_ROLE = Role.AGENT  # replies inside a conversation
INLINE_MIN_ROLE = Role.AGENT  # @bot <text> script search


def command_rule(name: str) -> CommandRule | None:
    return COMMANDS.get(name.lower())


def may_run(role: Role | None, name: str) -> bool:
    rule = command_rule(name)
    if rule is None:
        return False
    return rule.min_role is None or (role is not None and role >= rule.min_role)


def button_prefix(data: str | None) -> str:
    return (data or "").split(":", 1)[0]


def may_press(role: Role | None, data: str | None) -> bool:
    needed = BUTTONS.get(button_prefix(data))
    return needed is not None and role is not None and role >= needed


def served(update_kind: str, chat_kind: str) -> bool:
    return (update_kind, chat_kind) in SERVED


def may_press_in_team_chat(data: str | None) -> bool:
    parts = (data or "").split(":")
    return parts[0] in TEAM_CHAT_BUTTONS or ":".join(parts[:2]) in TEAM_CHAT_BUTTONS


def menu_for(role: Role, available: set[str]) -> list[str]:
    """Commands shown to this role, in table order, limited to those the bot has handlers for."""
    return [
        name
        for name, rule in COMMANDS.items()
        if rule.menu and name in available and (rule.min_role is None or role >= rule.min_role)
    ]
