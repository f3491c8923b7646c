"""Plain records of the broadcasts feature, read from SQLite rows. No Telegram here."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from bot.broadcasts.audience import Audience

KINDS = ("text", "photo", "document")
#: The options the supervisor chooses, in the order the composing dialogue asks for them.
CHOICES = ("audience", "ack_required", "urgent", "pin", "silent")
#: `team_message_id` / `panel_message_id` of a message that was sent but whose Telegram answer
#: timed out (the outbox's one-message window): posted, id unknown. It is never posted again (the
#: team group would see the announcement twice) and never pinned or edited. Telegram's message ids
#: start at 1, so 0 is never a real one.
UNKNOWN_MESSAGE_ID = 0


@dataclass(frozen=True)
class Content:
    """What is announced: a text, or a photo/document (re-sent by file_id) with a caption.

    `body_html` is Telegram HTML (the sender's formatting kept, everything else escaped)."""

    kind: str
    body_html: str = ""
    file_id: str | None = None
    file_name: str | None = None

    @property
    def is_media(self) -> bool:
        return self.kind != "text"


def _flag(value: int | None) -> bool | None:
    return None if value is None else bool(value)


@dataclass(frozen=True)
class Broadcast:
    id: int
    author_id: int
    status: str
    kind: str
    body_html: str
    file_id: str | None
    file_name: str | None
    audience: str | None
    ack_required: bool | None
    urgent: bool | None
    pin: bool | None
    silent: bool | None
    schedule_rule: str | None
    schedule_text: str | None
    schedule_id: int | None
    panel_chat_id: int | None
    panel_message_id: int | None
    team_message_id: int | None
    team_pinned: bool
    created_at: int
    sent_at: int | None
    finished_at: int | None
    #: The visible number ("通知 #3"), given when sent; None for drafts and schedule templates.
    number: int | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Broadcast:
        return cls(
            id=row["id"],
            author_id=row["author_id"],
            status=row["status"],
            kind=row["kind"],
            body_html=row["body_html"],
            file_id=row["file_id"],
            file_name=row["file_name"],
            audience=row["audience"],
            ack_required=_flag(row["ack_required"]),
            urgent=_flag(row["urgent"]),
            pin=_flag(row["pin"]),
            silent=_flag(row["silent"]),
            schedule_rule=row["schedule_rule"],
            schedule_text=row["schedule_text"],
            schedule_id=row["schedule_id"],
            panel_chat_id=row["panel_chat_id"],
            panel_message_id=row["panel_message_id"],
            team_message_id=row["team_message_id"],
            team_pinned=bool(row["team_pinned"]),
            created_at=row["created_at"],
            sent_at=row["sent_at"],
            finished_at=row["finished_at"],
            number=row["number"],
        )

    @property
    def content(self) -> Content:
        return Content(self.kind, self.body_html, self.file_id, self.file_name)

    @property
    def is_media(self) -> bool:
        return self.kind != "text"

    @property
    def team_posted(self) -> bool:
        """Posted in the team group (maybe unconfirmed: then `team_message_id` is UNKNOWN_MESSAGE_ID)."""
        return self.team_message_id is not None

    @property
    def panel_editable(self) -> bool:
        """The author's panel message is known and can be edited."""
        return self.panel_chat_id is not None and self.panel_message_id not in (None, UNKNOWN_MESSAGE_ID)

    @property
    def audience_spec(self) -> Audience | None:
        return Audience.decode(self.audience) if self.audience else None

    @property
    def is_schedule_draft(self) -> bool:
        return self.schedule_rule is not None

    def next_choice(self) -> str | None:
        """The first option not chosen yet (None: ready for the preview)."""
        for name in CHOICES:
            value = getattr(self, name)
            if value is None or (name == "audience" and not self.audience_spec.complete):
                return name
        return None


@dataclass(frozen=True)
class Recipient:
    broadcast_id: int
    tg_id: int
    status: str
    message_id: int | None
    error: str | None
    sent_at: int | None
    acked_at: int | None
    renotify_count: int
    last_notified_at: int | None
    name: str = ""

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Recipient:
        keys = row.keys()
        return cls(
            broadcast_id=row["broadcast_id"],
            tg_id=row["tg_id"],
            status=row["status"],
            message_id=row["message_id"],
            error=row["error"],
            sent_at=row["sent_at"],
            acked_at=row["acked_at"],
            renotify_count=row["renotify_count"],
            last_notified_at=row["last_notified_at"],
            name=display_name(row) if "full_name" in keys else str(row["tg_id"]),
        )


def display_name(row: sqlite3.Row) -> str:
    """The same name Person.name gives, from a row joined with users (which may be missing)."""
    return row["display_name"] or row["full_name"] or (f"@{row['username']}" if row["username"] else str(row["tg_id"]))


@dataclass(frozen=True)
class Counts:
    """Where a broadcast's delivery stands."""

    total: int = 0
    pending: int = 0
    sending: int = 0
    sent: int = 0
    blocked: int = 0
    failed: int = 0
    acked: int = 0

    @property
    def attempted(self) -> int:
        return self.sent + self.blocked + self.failed

    @property
    def unacked(self) -> int:
        return self.sent - self.acked if self.sent >= self.acked else 0

    @property
    def finished(self) -> bool:
        return self.pending == 0 and self.sending == 0


@dataclass(frozen=True)
class Schedule:
    id: int
    template_id: int
    author_id: int
    rule: str
    rule_text: str
    next_run: int | None
    last_run: int | None
    grace_minutes: int
    paused: bool
    status: str
    created_at: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Schedule:
        return cls(
            id=row["id"],
            template_id=row["template_id"],
            author_id=row["author_id"],
            rule=row["rule"],
            rule_text=row["rule_text"],
            next_run=row["next_run"],
            last_run=row["last_run"],
            grace_minutes=row["grace_minutes"],
            paused=bool(row["paused"]),
            status=row["status"],
            created_at=row["created_at"],
        )
