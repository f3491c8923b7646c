"""Reminders (issue 5): 催付 for orders unpaid 12 h, 发货 warnings at 36 h and breaches at 48 h.

Domain only, no Telegram: `rules` (thresholds, per-shop overrides, due conditions as SQL, night
gap), `engine` (state in SQLite, the scan, delivery bookkeeping, button actions), `digest`
(splitting digests to Telegram's limits), `cli` (`kefu reminders due`). The Telegram layer is
handlers/reminders.py. The import summary calls `due_count(db, now, settings)`; the handover
prompt calls `open_claims(db, tg_id)` (the open reminders a person claimed).
"""

from bot.reminders.engine import (
    ActionResult,
    DueItem,
    MessageRow,
    ReminderEngine,
    ReminderView,
    ScanResult,
    count_due,
    due_count,
    list_due,
    open_claims,
    order_reminders,
    release_claims,
)
from bot.reminders.rules import (
    OPEN_STATES,
    OrderDeadline,
    RuleBook,
    ShopOverrideError,
    Thresholds,
    order_deadline,
    parse_shop_overrides,
)

__all__ = [
    "OPEN_STATES", "ActionResult", "DueItem", "MessageRow", "ReminderEngine", "ReminderView", "RuleBook",
    "ScanResult", "ShopOverrideError", "Thresholds", "count_due", "due_count", "list_due", "open_claims",
    "release_claims", "order_reminders", "OrderDeadline", "order_deadline",
    "parse_shop_overrides",
]
