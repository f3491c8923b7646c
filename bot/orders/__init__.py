"""Orders in: shop back-end exports (file/CLI), ERP pushes (HTTP), lookups for the /order card.

The Telegram layer uses `import_file`, `ImportSummary`, `NotAnExport`, `get_order` and
`order_variables`; the HTTP endpoint lives in `bot.orders.api` (Starlette, imported on demand).
"""

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
from bot.orders.inflight import (
    InFlightImport,
    import_ended,
    import_progress_message,
    import_started,
    interrupted_imports,
)
from bot.orders.lookups import OrderClock, OrderRef, known_orders, orders_due_within
from bot.orders.parsing import warm_up as warm_up_parser
from bot.orders.model import PLATFORMS, STATUSES, NormalizedOrder, RejectedRow
from bot.orders.readers import NotAnExport, open_export
from bot.orders.text import platform_name, template_module

__all__ = [
    "PLATFORMS", "STATUSES", "ImportSummary", "NormalizedOrder", "NotAnExport", "OrderClock", "OrderRef", "RejectedRow",
    "known_orders", "orders_due_within", "platform_name", "template_module",
    "StoredOrder", "UpsertCounts", "find_orders", "get_order", "import_file", "open_export",
    "order_variables", "upsert_orders", "InFlightImport", "import_ended", "import_progress_message", "import_started", "interrupted_imports",
    "warm_up_parser",
]
