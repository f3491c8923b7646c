"""Supervisor broadcasts (issue 7): announcements by shift or role, acknowledgements, urgent
re-notify and scheduled announcements. Domain only; the Telegram side is handlers/broadcasts.py."""

from bot.broadcasts.audience import Audience, select_recipients
from bot.broadcasts.model import UNKNOWN_MESSAGE_ID, Broadcast, Content, Counts, Recipient, Schedule
from bot.broadcasts.pacing import Pacer
from bot.broadcasts.service import BroadcastService, Fired
from bot.broadcasts.when import (
    Due,
    Rule,
    WhenWords,
    due_occurrences,
    next_run,
    parse_when,
)

__all__ = [
    "Audience",
    "Broadcast",
    "BroadcastService",
    "Content",
    "Counts",
    "Due",
    "Fired",
    "Pacer",
    "Recipient",
    "Rule",
    "Schedule",
    "UNKNOWN_MESSAGE_ID",
    "WhenWords",
    "due_occurrences",
    "next_run",
    "parse_when",
    "select_recipients",
]
