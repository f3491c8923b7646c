"""Which reply scripts fit an order's situation: the business rule behind the order card's script
buttons and the reminders' 查看话术 (through the kb face). Plain data in, script ids out."""

from __future__ import annotations

from collections.abc import Sequence

from .base import KnowledgeBase
from .model import Script

#: Scripts offered on the card, by the order's situation: (category, preferred script ids). The
#: first preferred id found in the knowledge base is used, else the category's first script.
SCRIPT_CHOICES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "unpaid": (("payment_reminder", ("pay_remind_once", "pay_remind_problem")),),
    "unshipped": (("ship_urge", ("ship_when",)), ("address_change", ("addr_before_ship",))),
    "unshipped_overdue": (("ship_urge", ("ship_overdue_apology", "ship_when")), ("address_change", ("addr_before_ship",))),
    "presale": (("ship_urge", ("ship_presale",)), ("address_change", ("addr_before_ship",))),
    "shipped": (("logistics", ("log_slow", "log_not_updated")), ("address_change", ("addr_after_ship",))),
    "completed": (("return_exchange", ("ret_7day_rules",)), ("refund_progress", ("rf_when",))),
    "refunding_unshipped": (("refund_progress", ("rf_refund_unshipped", "rf_when")),),
    "refunding": (("refund_progress", ("rf_when", "rf_return_received")),),
    "closed": (),
}


def order_situation(status: str, *, refunding: bool, presale: bool, overdue: bool) -> str:
    """Which scripts fit the order now (a key of SCRIPT_CHOICES)."""
    shipping = status in ("paid_unshipped", "partially_shipped")
    if refunding:
        return "refunding_unshipped" if shipping or status == "unpaid" else "refunding"
    if shipping:
        if presale:
            return "presale"
        return "unshipped_overdue" if overdue else "unshipped"
    return status if status in SCRIPT_CHOICES else "closed"


def pick_script(kb: KnowledgeBase, category: str, preferred: Sequence[str]) -> Script | None:
    """The first preferred script the knowledge base has, else the category's first script."""
    found = next((kb.get(i) for i in preferred if kb.get(i) is not None), None)
    return found if found is not None else next(iter(kb.scripts_in(category)), None)


def scripts_for_situation(kb: KnowledgeBase, key: str, limit: int = 4) -> list[str]:
    """Script ids for situation `key`: every preferred id found per category (else the category's
    first script), without repeats, at most `limit`."""
    chosen: list[str] = []
    for category, preferred in SCRIPT_CHOICES.get(key, ()):
        found = [i for i in preferred if kb.get(i) is not None]
        if not found:
            first = pick_script(kb, category, ())
            found = [first.id] if first is not None else []
        chosen += [i for i in found if i not in chosen]
    return chosen[:limit]
