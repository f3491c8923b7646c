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
from bot.orders.model import PLATFORMS, STATUSES, NormalizedOrder, RejectedRow
from bot.orders.readers import NotAnExport, open_export

__all__ = [
    "PLATFORMS", "STATUSES", "ImportSummary", "NormalizedOrder", "NotAnExport", "RejectedRow",
    "StoredOrder", "UpsertCounts", "find_orders", "get_order", "import_file", "open_export",
    "order_variables", "upsert_orders",
]
