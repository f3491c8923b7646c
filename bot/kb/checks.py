"""Checks on the knowledge base as a whole (run by the loader, so `kefu kb check` and /kb_reload
both apply them), and the shop-policy warnings shown at start-up.

- every script is sent by some flow branch, unless it is marked `search_only: true`;
- no flow question whose choices all lead to the same result (the same scripts sent);
- policy.yaml: `address_form` (亲 / 宝 / 您好 per platform) and `example_values` (the names whose
  values are still the shipped examples: a warning, not an error, so a new shop can start).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .model import Flow, FlowNode, Problem, Script
from bot.yamlsrc import MarkedDict, MarkedList, YamlProblem, read_yaml

Add = Callable[[Path | str, int, str], None]

#: Policy key listing the names whose values are still the shipped examples.
EXAMPLE_VALUES_KEY = "example_values"
#: Policy key: the form of address at the start of a reply, text or {platform code: text, default: text}.
ADDRESS_FORM_KEY = "address_form"


# -- flows ---------------------------------------------------------------------------------------


def _results(nodes: Mapping[str, FlowNode]) -> dict[str, Any]:
    """What each node finally does: an outcome is the set of scripts it sends; a question whose
    choices all end the same way counts as that result, any other question as itself."""
    memo: dict[str, Any] = {}

    def result(node_id: str, seen: frozenset[str] = frozenset()) -> Any:
        if node_id in memo:
            return memo[node_id]
        node = nodes.get(node_id)
        if node is None or node_id in seen:  # reported elsewhere (missing node, cycle)
            return ("node", node_id)
        if node.is_outcome:
            value: Any = ("send", frozenset(node.send))
        else:
            outcomes = {result(c.next, seen | {node_id}) for c in node.choices}
            value = next(iter(outcomes)) if len(outcomes) == 1 else ("node", node_id)
        memo[node_id] = value
        return value

    for node_id in nodes:
        result(node_id)
    return memo


def check_flow_choices(path: Path, raw_nodes: MarkedDict, nodes: Mapping[str, FlowNode], add: Add) -> None:
    """A question is pointless when every choice ends in the same scripts: report it."""
    results = _results(nodes)
    for node_id, node in nodes.items():
        if node.is_outcome or len(node.choices) < 2:
            continue
        outcomes = {results.get(c.next, ("node", c.next)) for c in node.choices}
        if len(outcomes) == 1:
            only = next(iter(outcomes))
            sent = ", ".join(sorted(only[1])) if only[0] == "send" else only[1]
            add(path, raw_nodes.line_of(node_id),
                f"flow node {node_id!r}: every choice leads to the same result ({sent}); "
                "drop the question or make the choices differ")


def sent_by_flows(flows: Iterable[Flow]) -> set[str]:
    return {sid for flow in flows for node in flow.nodes.values() for sid in node.send}


def _source(script: Script) -> tuple[str, int]:
    file, _, line = script.source.rpartition(":")
    return (file, int(line)) if file and line.isdigit() else (script.source or "?", 1)


def check_reachable(scripts: Sequence[Script], flows: Sequence[Flow], add: Add) -> None:
    """Every script must be sent by some flow branch unless marked `search_only: true`."""
    sent = sent_by_flows(flows)
    for script in scripts:
        if script.id not in sent and not script.search_only:
            file, line = _source(script)
            add(file, line, f"script {script.id!r} is not sent by any flow branch "
                "(add it to a flow outcome, or mark it search_only: true)")


# -- policy --------------------------------------------------------------------------------------


def address_form(policy: Mapping[str, Any], platform: str | None) -> str | None:
    """亲 / 宝 / 您好 for this platform (the `default` entry when unknown); None when not set."""
    form = policy.get(ADDRESS_FORM_KEY)
    if isinstance(form, str):
        return form.strip() or None
    if isinstance(form, Mapping):
        value = form.get(platform or "") or form.get("default")
        return str(value).strip() if value else None
    return None


#: The policy names the cases feature reads (bot/cases/approval.py DEFAULTS).
APPROVAL_OPTIONS = (
    "quality_return_needs_supervisor", "compensation_cap", "refund_only_approval_above", "admin_approval_above",
    "approval_remind_minutes", "approval_escalate_minutes",
)


def check_policy(path: Path, policy: Mapping[str, Any], platforms: Iterable[str], add: Add) -> None:
    """Shapes of the structured policy options; lines come from re-reading the file."""
    try:
        data = read_yaml(path)
    except YamlProblem:
        return  # already reported by the loader
    lines: Callable[[str], int] = data.line_of if isinstance(data, MarkedDict) else (lambda _k: 1)
    form = policy.get(ADDRESS_FORM_KEY)
    if form is not None:
        known = set(platforms) | {"default"}
        if isinstance(form, Mapping):
            bad = [k for k, v in form.items() if k not in known or not isinstance(v, str) or not v.strip()]
            if bad or "default" not in form:
                add(path, lines(ADDRESS_FORM_KEY),
                    f"policy {ADDRESS_FORM_KEY}: map platform codes ({', '.join(sorted(known))}) to text, "
                    "with a 'default' entry" + (f"; wrong: {', '.join(map(str, bad))}" if bad else ""))
        elif not isinstance(form, str) or not form.strip():
            add(path, lines(ADDRESS_FORM_KEY), f"policy {ADDRESS_FORM_KEY}: text (亲) or a mapping per platform")
    examples = policy.get(EXAMPLE_VALUES_KEY)
    if examples is not None:
        if not isinstance(examples, list) or not all(isinstance(n, str) for n in examples):
            add(path, lines(EXAMPLE_VALUES_KEY), f"policy {EXAMPLE_VALUES_KEY}: a list of policy names")
        else:
            for name in examples:
                if name not in policy or name == EXAMPLE_VALUES_KEY:
                    add(path, lines(EXAMPLE_VALUES_KEY), f"policy {EXAMPLE_VALUES_KEY}: {name!r} is not a policy name")
    check_approval_options(path, policy, lines, add)


def check_approval_options(path: Path, policy: Mapping[str, Any], lines: Callable[[str], int], add: Add) -> None:
    """The 售后审批 options (compensation_cap, refund_only_approval_above, admin_approval_above,
    approval_remind_minutes, approval_escalate_minutes, quality_return_needs_supervisor), read by
    the cases feature's own rules so the check and the bot can never disagree."""
    from bot.cases import ApprovalPolicy

    try:
        ApprovalPolicy.from_policy(policy)
    except ValueError as exc:
        message = str(exc)
        names = [n for n in APPROVAL_OPTIONS if n in message]
        add(path, lines(names[0]) if names else 1, message)


def example_values(policy: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(name, value) of every policy value still marked as a shipped example, in file order."""
    names = policy.get(EXAMPLE_VALUES_KEY)
    if not isinstance(names, list):
        return []
    return [(name, policy[name]) for name in names if isinstance(name, str) and name in policy
            and name != EXAMPLE_VALUES_KEY]


def policy_warnings(kb_dir: Path, policy: Mapping[str, Any]) -> list[Problem]:
    """`kefu kb check` warnings (not errors): example values a shop must replace."""
    path = kb_dir / "policy.yaml"
    try:
        data = read_yaml(path)
    except YamlProblem:
        data = None
    line_of = data.line_of if isinstance(data, MarkedDict) else (lambda _k: 1)
    listed = data.get(EXAMPLE_VALUES_KEY) if isinstance(data, MarkedDict) else None
    return [
        Problem(str(path), line_of(name) if name in (data or {}) else (listed.line if isinstance(listed, MarkedList) else 1),
                f"warning: {name} is still the shipped example ({value}); put in your shop's value and "
                f"remove {name!r} from {EXAMPLE_VALUES_KEY}")
        for name, value in example_values(policy)
    ]
