"""Service standards as data: load, validate (every problem as file:line), look up.

The shipped defaults live next to this module (standards.yaml, documented at its top); a shop
points KEFU_STANDARDS_FILE at its own copy. `load_standards(path)` either returns every standard or
raises StandardsError carrying all problems found, so `kefu standards check` can list them at once
and a reload keeps the previous standards when the new file is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.yamlsrc import MarkedDict, MarkedList, YamlProblem, read_yaml

DEFAULT_STANDARDS_FILE = Path(__file__).with_name("standards.yaml")

KINDS = ("within", "rate")
#: metric → the kinds it can be measured as
METRICS: dict[str, tuple[str, ...]] = {
    "payment_claim": ("within",),  # 催付 reminder: first push → claim (or done)
    "warning_saved": ("rate",),  # 发货 warning pushed → shipped before the deadline
    "shipping_late": ("rate",),  # paid order due in the period → shipped after / still unshipped past deadline
    "handover_takeover": ("within",),  # handover item handed to a shift → taken over, from the shift start
    "handover_carried_over": ("rate",),  # item handed to more than max_shifts shifts
    "ack_time": ("within",),  # announcement needing 收到 → acknowledged
    "payment_success": ("rate",),  # 催付 pushed → paid within 72 h
}
SCOPES = ("team", "shift", "shop", "person")
HOURS = ("shift", "all")
DIRECTIONS = ("at_least", "at_most")
KNOWN_KEYS = {"id", "name", "kind", "metric", "within_minutes", "target_percent", "direction", "scope", "hours",
              "why", "params", "shop_targets"}
_ID = re.compile(r"^[a-z0-9_]{1,40}$")


@dataclass(frozen=True)
class Standard:
    id: str
    name: str
    kind: str
    metric: str
    target_percent: float | None
    direction: str = "at_least"
    within_minutes: float | None = None
    scope: tuple[str, ...] = ("team",)
    hours: str = "shift"
    why: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    shop_targets: dict[str, float] = field(default_factory=dict)
    line: int = 0

    def target_for(self, shop: str | None = None) -> float | None:
        if shop is not None and shop in self.shop_targets:
            return self.shop_targets[shop]
        return self.target_percent

    def met(self, achieved: float | None, target: float | None = None) -> bool | None:
        """None when there is nothing to judge (no events, or no target set)."""
        target = self.target_percent if target is None else target
        if achieved is None or target is None:
            return None
        return achieved >= target if self.direction == "at_least" else achieved <= target

    def margin(self, achieved: float | None) -> float | None:
        """Percentage points on the good side of the target (negative: missed)."""
        if achieved is None or self.target_percent is None:
            return None
        diff = achieved - self.target_percent
        return diff if self.direction == "at_least" else -diff


@dataclass(frozen=True)
class StandardsProblem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class StandardsError(ValueError):
    def __init__(self, problems: list[StandardsProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def load_standards(path: str | Path | None = None) -> tuple[Standard, ...]:
    """Read and validate a standards file (default: the shipped one). Raises StandardsError."""
    # unset, or set to an empty value (KEFU_STANDARDS_FILE= reads as "."): the shipped defaults
    path = Path(path) if path and str(path).strip() not in ("", ".") else DEFAULT_STANDARDS_FILE
    problems: list[StandardsProblem] = []

    def add(line: int, message: str) -> None:
        problems.append(StandardsProblem(str(path), line, message))

    try:
        data = read_yaml(path)
    except FileNotFoundError:
        raise StandardsError([StandardsProblem(str(path), 1, "file not found")]) from None
    except OSError as exc:
        raise StandardsError([StandardsProblem(str(path), 1, f"cannot read: {exc.strerror or exc}")]) from None
    except YamlProblem as exc:
        raise StandardsError([StandardsProblem(str(path), exc.line, exc.message)]) from None
    if not isinstance(data, MarkedDict) or not isinstance(data.get("standards"), MarkedList):
        raise StandardsError([StandardsProblem(str(path), 1, "expected a mapping with a `standards:` list")])
    for key, line in getattr(data, "duplicate_keys", []):
        add(line, f"key {key!r} given twice")
    items: MarkedList = data["standards"]
    result: list[Standard] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        line = items.line_of(index)
        if not isinstance(item, MarkedDict):
            add(line, "each standard is a mapping (id, name, kind, metric, ...)")
            continue
        before = len(problems)
        for key, key_line in getattr(item, "duplicate_keys", []):
            add(key_line, f"key {key!r} given twice")
        for key in item:
            if key not in KNOWN_KEYS:
                add(item.line_of(key), f"unknown key {key!r} (known: {', '.join(sorted(KNOWN_KEYS))})")
        sid = item.get("id")
        if not isinstance(sid, str) or not _ID.match(sid):
            add(item.line_of("id"), "id must be 1-40 characters of a-z, 0-9 and _")
        elif sid in seen:
            add(item.line_of("id"), f"id {sid!r} already used on line {seen[sid]}")
        else:
            seen[sid] = item.line_of("id")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            add(item.line_of("name"), "name is required (the text people see)")
        kind = item.get("kind")
        if kind not in KINDS:
            add(item.line_of("kind"), f"kind must be one of {', '.join(KINDS)}")
        metric = item.get("metric")
        if metric not in METRICS:
            add(item.line_of("metric"), f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
        elif kind in KINDS and kind not in METRICS[metric]:
            add(item.line_of("kind"), f"metric {metric} is measured as {' or '.join(METRICS[metric])}, not {kind}")
        within = item.get("within_minutes")
        if kind == "within":
            if _number(within) is None or not 0 < float(within) <= 7 * 24 * 60:
                add(item.line_of("within_minutes"), "within_minutes must be a number of minutes in (0, 10080]")
        elif within is not None:
            add(item.line_of("within_minutes"), "within_minutes only applies to kind: within")
        target = item.get("target_percent")
        if target is not None and (_number(target) is None or not 0 <= float(target) <= 100):
            add(item.line_of("target_percent"), "target_percent must be a number from 0 to 100, or null")
        direction = item.get("direction", "at_least")
        if direction not in DIRECTIONS:
            add(item.line_of("direction"), f"direction must be {' or '.join(DIRECTIONS)}")
        scope = item.get("scope", ["team"])
        if isinstance(scope, str):
            scope = [scope]
        if not isinstance(scope, list) or not scope or any(s not in SCOPES for s in scope):
            add(item.line_of("scope"), f"scope must be a list of {', '.join(SCOPES)}")
            scope = ["team"]
        hours = item.get("hours", "shift")
        if hours not in HOURS:
            add(item.line_of("hours"), "hours must be shift (shift hours only) or all (wall clock)")
        params = item.get("params", {}) or {}
        if not isinstance(params, dict):
            add(item.line_of("params"), "params must be a mapping")
            params = {}
        if "urgent" in params and not isinstance(params["urgent"], bool):
            add(item.line_of("params"), "params.urgent must be true or false")
        if "max_shifts" in params and (not isinstance(params["max_shifts"], int) or params["max_shifts"] < 0):
            add(item.line_of("params"), "params.max_shifts must be a whole number >= 0")
        shop_targets = item.get("shop_targets", {}) or {}
        if not isinstance(shop_targets, dict) or any(
            _number(v) is None or not 0 <= float(v) <= 100 for v in shop_targets.values()
        ):
            add(item.line_of("shop_targets"), "shop_targets must map shop names to percentages 0..100")
            shop_targets = {}
        why = item.get("why", "")
        if not isinstance(why, str) or not why.strip():
            add(item.line_of("why") if "why" in item else line, "why is required: why it matters to the buyer")
        if len(problems) > before:
            continue
        result.append(Standard(
            id=sid, name=name.strip(), kind=kind, metric=metric,
            target_percent=None if target is None else float(target), direction=direction,
            within_minutes=None if within is None else float(within), scope=tuple(scope), hours=hours,
            why=why.strip(), params=dict(params), shop_targets={str(k): float(v) for k, v in shop_targets.items()},
            line=line,
        ))
    if problems:
        raise StandardsError(problems)
    return tuple(result)
