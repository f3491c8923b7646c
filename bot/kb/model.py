"""Plain data objects of the scripts knowledge base (话术库).

Kept free of loading and searching logic so the Telegram layer, the CLI and the benchmarks can
build and pass them around without caring where they came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The category codes are a stable interface (other tools rely on them): the loader refuses a
#: knowledge base that lacks one of them or adds another.
CATEGORY_CODES: tuple[str, ...] = (
    "return_exchange",
    "quality_issue",
    "damaged",
    "missing_item",
    "wrong_item",
    "logistics",
    "ship_urge",
    "not_received",
    "usage",
    "refund_progress",
    "price_promo",
    "invoice",
    "complaint",
    "address_change",
    "health_safety",
    "payment_reminder",
)

#: Variables the order store provides (any may be missing; then they show as a 【…】 slot).
ORDER_VARIABLES: tuple[str, ...] = (
    "order_no",
    "shop",
    "platform_name",
    "amount",
    "buyer",
    "status_text",
    "created_at",
    "paid_at",
    "shipped_at",
    "item_title",
    "tracking_no",
    "carrier",
    "agent_name",
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the knowledge base, printed as `file:line: message`."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class KbError(Exception):
    """The knowledge base on disk is not usable; `problems` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "knowledge base error")


@dataclass(frozen=True)
class Category:
    code: str
    label: str
    description: str
    order: int
    keywords: tuple[str, ...] = ()
    escalate: bool = False  # cases that always go to a supervisor (health & safety)


@dataclass
class Script:
    id: str
    title: str
    category: str
    keywords: tuple[str, ...]
    phrasings: tuple[str, ...]
    body: str
    variables: dict[str, str]
    note: str
    related: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    #: Found by search only: no flow branch needs to send it (kb check otherwise requires one).
    search_only: bool = False
    #: Shown above the raw body when the template cannot be rendered (from texts.yaml).
    error_marker: str = "【!】"
    source: str = ""  # "file:line" where the script is defined
    template: Any = field(default=None, repr=False, compare=False)  # compiled jinja2 Template


@dataclass(frozen=True)
class FlowChoice:
    label: str
    next: str


@dataclass(frozen=True)
class FlowNode:
    """A question with choices, or an outcome (scripts to send and the agent's checklist)."""

    id: str
    ask: str = ""
    choices: tuple[FlowChoice, ...] = ()
    send: tuple[str, ...] = ()
    checklist: tuple[str, ...] = ()
    note: str = ""

    @property
    def is_outcome(self) -> bool:
        return not self.choices


@dataclass(frozen=True)
class Flow:
    id: str
    stage: str  # 未发货 / 未收到 / 已收到 ...
    title: str
    order: int
    start: str
    nodes: dict[str, FlowNode]

    def node(self, node_id: str) -> FlowNode | None:
        return self.nodes.get(node_id)


@dataclass(frozen=True)
class Hit:
    script: Script
    score: float
