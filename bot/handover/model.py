"""The handover book's records. Plain data: no Telegram, no wording (that is in templates/)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import timedelta

from bot.people import UserError

#: Item kinds, in the order their buttons are shown; names are in templates/labels/handover.yaml.
KINDS = ("refund", "customer", "warehouse", "complaint", "other")

#: The author may edit or withdraw an item this long after writing it.
EDIT_WINDOW = timedelta(minutes=10)

TEXT_LIMIT = 1000
NOTE_LIMIT = 200


class HandoverError(UserError):
    """A refusal the user can fix; `code` names `handover.errors.<code>` in the labels."""


@dataclass(frozen=True)
class Attachment:
    file_id: str
    type: str  # 'photo' or 'document'
    name: str | None = None


@dataclass(frozen=True)
class Item:
    id: int
    author_id: int
    occurrence: str
    occurrence_start: int
    created_at: int
    updated_at: int
    text: str
    kind: str
    urgent: bool
    order_no: str | None
    attachment: Attachment | None
    status: str  # open, resolved, withdrawn
    resolved_by: int | None
    resolved_at: int | None
    resolved_occurrence: str | None
    resolution_note: str
    withdrawn_at: int | None
    # The latest shift it was handed to, and whether that shift took it over.
    handed_count: int = 0
    handed_to: str | None = None
    handed_at: int | None = None
    taken_by: int | None = None
    taken_at: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def editable_until(self) -> int:
        return self.created_at + int(EDIT_WINDOW.total_seconds())

    def editable_at(self, now: int) -> bool:
        return self.is_open and now < self.editable_until

    @property
    def awaiting_takeover(self) -> bool:
        """Handed to a shift that has not confirmed it yet."""
        return self.is_open and self.handed_to is not None and self.taken_by is None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Item:
        keys = row.keys()
        attachment = (
            Attachment(row["attachment_file_id"], row["attachment_type"], row["attachment_name"])
            if row["attachment_file_id"]
            else None
        )
        return cls(
            id=row["id"],
            author_id=row["author_id"],
            occurrence=row["occurrence"],
            occurrence_start=row["occurrence_start"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            text=row["text"],
            kind=row["kind"],
            urgent=bool(row["urgent"]),
            order_no=row["order_no"],
            attachment=attachment,
            status=row["status"],
            resolved_by=row["resolved_by"],
            resolved_at=row["resolved_at"],
            resolved_occurrence=row["resolved_occurrence"],
            resolution_note=row["resolution_note"] or "",
            withdrawn_at=row["withdrawn_at"],
            handed_count=row["handed_count"] if "handed_count" in keys else 0,
            handed_to=row["handed_to"] if "handed_to" in keys else None,
            handed_at=row["handed_at"] if "handed_at" in keys else None,
            taken_by=row["taken_by"] if "taken_by" in keys else None,
            taken_at=row["taken_at"] if "taken_at" in keys else None,
        )


@dataclass(frozen=True)
class HistoryEntry:
    at: int
    actor: int
    action: str
    before: dict
    after: dict


@dataclass(frozen=True)
class CardMessage:
    item_id: int
    occurrence: str  # '' for the author's confirmation
    chat_id: int
    message_id: int


@dataclass(frozen=True)
class ShiftStats:
    """What one shift occurrence did with the handover book."""

    occurrence: str
    shift: str
    start: int
    written: int  # items written in this shift (withdrawn ones not counted)
    received: int  # items handed to this shift
    taken: int  # of those, taken over
    avg_take_minutes: float | None
    max_take_minutes: float | None
    resolved: int  # items resolved during this shift

    @property
    def not_taken(self) -> int:
        return self.received - self.taken


@dataclass(frozen=True)
class SearchResult:
    mode: str  # 'order', 'date', 'kind' or 'keyword'
    value: str
    items: list[Item]
    total: int
