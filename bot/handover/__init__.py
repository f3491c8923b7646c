"""The shift handover book (交接本, issue 6): items, edits within 10 minutes, take-over and
resolution, carry-over from shift to shift, search and per-shift statistics.

The Telegram layer is handlers/handover.py; it finds the service in `services.handover` (bot/services.py).
"""

from bot.handover.claims import ClaimRef, claimed_reminders
from bot.handover.model import (
    EDIT_WINDOW,
    KINDS,
    NOTE_LIMIT,
    TEXT_LIMIT,
    Attachment,
    CardMessage,
    HandoverError,
    HistoryEntry,
    Item,
    SearchResult,
    ShiftStats,
)
from bot.handover.occurrences import (
    occurrence_key,
    prompts_due,
    running_windows,
    split_key,
    window_for_key,
)
from bot.handover.orders import DueOrder, OrderRef
from bot.handover.service import HandoverService, age_minutes

__all__ = [
    "EDIT_WINDOW", "KINDS", "NOTE_LIMIT", "TEXT_LIMIT", "Attachment", "CardMessage", "ClaimRef", "DueOrder",
    "HandoverError", "HandoverService", "HistoryEntry", "Item", "OrderRef", "SearchResult", "ShiftStats",
    "age_minutes", "claimed_reminders", "occurrence_key", "prompts_due", "running_windows", "split_key",
    "window_for_key",
]
