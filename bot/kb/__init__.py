"""Reply scripts (话术) knowledge base: loading + validation, rendering, search, usage stats.

No Telegram here: the handlers call `load_kb`, `KnowledgeBase.search/get/render/...`,
`fill_script` (a script filled with an order) and the
async functions in `bot.kb.stats`.
"""

from .base import GOOD_MATCH_SCORE, KnowledgeBase
from .checks import example_values, policy_warnings
from .fill import FilledScript, fill_script, script_values
from .holder import KbHolder
from .loader import collect, load_kb
from .model import (
    CATEGORY_CODES,
    ORDER_VARIABLES,
    Category,
    Flow,
    FlowChoice,
    FlowNode,
    Hit,
    KbError,
    Problem,
    Script,
)
from .paths import default_kb_dir
from .render import render_script
from .situations import (
    SCRIPT_CHOICES,
    order_situation,
    pick_script,
    scripts_for_situation,
)
from .stats import record_view

__all__ = [
    "CATEGORY_CODES",
    "GOOD_MATCH_SCORE",
    "ORDER_VARIABLES",
    "Category",
    "FilledScript",
    "Flow",
    "FlowChoice",
    "FlowNode",
    "Hit",
    "KbError",
    "KbHolder",
    "KnowledgeBase",
    "Problem",
    "Script",
    "collect",
    "default_kb_dir",
    "example_values",
    "fill_script",
    "load_kb",
    "policy_warnings",
    "record_view",
    "render_script",
    "SCRIPT_CHOICES",
    "order_situation",
    "pick_script",
    "script_values",
    "scripts_for_situation",
]
