"""Filling a script with an order: the one rule every caller uses (the script view, the inline
query, a reminder's 查看话术, a case decision's next script).

The values are the order's script variables (`bot.orders.order_variables`: masked buyer, local
times, platform and status names), then the agent's name, then the caller's own values (a case's
amount, …), later ones winning where they are not empty. What is still missing shows as a 【…】
slot, and `missing` lists those slots for the agent to fill before sending.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from .model import Script
from .render import SLOT_FORMAT

if TYPE_CHECKING:
    from .base import KnowledgeBase


@dataclass(frozen=True)
class FilledScript:
    script: Script
    #: The buyer-facing text, with the shop policy and the values filled in.
    body: str
    #: The values it was filled with.
    values: Mapping[str, Any]
    #: True when an order was given (its fields are filled).
    order_found: bool
    #: Descriptions (or names) of the variables left as 【…】 slots in `body`.
    missing: tuple[str, ...]


def script_values(order: Any | None, tz: tzinfo | None, *, agent_name: str | None = None,
                  extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The variables for a script: the order's (`order`: a stored order, or None), the agent's
    name, then `extra` without its empty values."""
    values: dict[str, Any] = {}
    if order is not None:
        from bot.orders import order_variables

        values.update(order_variables(order, tz))
    if agent_name:
        values["agent_name"] = agent_name
    values.update({k: v for k, v in (extra or {}).items() if v not in (None, "")})
    return values


def fill_script(kb: KnowledgeBase, script: Script, order: Any | None = None, *, tz: tzinfo | None = None,
                agent_name: str | None = None, extra: Mapping[str, Any] | None = None) -> FilledScript:
    """`script` filled with `order` (None: its fields stay 【…】 slots) and the agent's name."""
    values = script_values(order, tz, agent_name=agent_name, extra=extra)
    body = kb.render(script, values)
    missing = tuple(
        desc or name
        for name, desc in script.variables.items()
        if not str(values.get(name) or "").strip() and SLOT_FORMAT.format(label=desc or name) in body
    )
    return FilledScript(script, body, values, order is not None, missing)
