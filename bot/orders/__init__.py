"""Orders in: shop back-end exports (file/CLI), ERP pushes (HTTP), lookups for the /order card.

The Telegram layer uses `import_file`, `ImportSummary`, `NotAnExport`, `get_order` and
`order_variables`; the HTTP endpoint lives in `bot.orders.api` (Starlette, imported on demand).
"""

from typing import TYPE_CHECKING

from bot.orders.inflight import (
    InFlightImport,
    import_ended,
    import_progress_message,
    import_started,
    interrupted_imports,
)
from bot.orders.lookups import OrderClock, OrderRef, known_orders, orders_due_within
from bot.orders.model import PLATFORMS, STATUSES, NormalizedOrder, RejectedRow
from bot.orders.text import platform_name, template_module

if TYPE_CHECKING:
    from bot.orders.importer import (
        ImportSummary,
        StoredOrder,
        UpsertCounts,
        find_orders,
        get_order,
        import_file,
        order_variables,
        upsert_orders,
    )
    from bot.orders.parsing import warm_up as warm_up_parser
    from bot.orders.readers import NotAnExport, open_export

#: Loaded on first use (PEP 562): reading and parsing exports (the importer, the parser process,
#: the readers and their formats) is not needed before the bot answers its first update (issue 13,
#: cold start). name -> (module, attribute).
_ON_FIRST_USE = {
    **{name: ("bot.orders.importer", name) for name in (
        "ImportSummary", "StoredOrder", "UpsertCounts", "find_orders", "get_order", "import_file",
        "order_variables", "upsert_orders")},
    "warm_up_parser": ("bot.orders.parsing", "warm_up"),
    "NotAnExport": ("bot.orders.readers", "NotAnExport"),
    "open_export": ("bot.orders.readers", "open_export"),
}


def __getattr__(name: str):
    try:
        module, attribute = _ON_FIRST_USE[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    import importlib

    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


__all__ = [
    "PLATFORMS", "STATUSES", "ImportSummary", "NormalizedOrder", "NotAnExport", "OrderClock", "OrderRef", "RejectedRow",
    "known_orders", "orders_due_within", "platform_name", "template_module",
    "StoredOrder", "UpsertCounts", "find_orders", "get_order", "import_file", "open_export",
    "order_variables", "upsert_orders", "InFlightImport", "import_ended", "import_progress_message", "import_started", "interrupted_imports",
    "warm_up_parser",
]
