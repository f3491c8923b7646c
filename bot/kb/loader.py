"""Reading and validating scripts_kb/: every problem is collected and reported as file:line.

`load_kb` either returns a complete, valid KnowledgeBase or raises KbError listing everything
wrong, so a reload can keep the old knowledge base in service when an edit is broken.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError, meta, nodes

from . import checks
from .base import KnowledgeBase
from .model import (
    CATEGORY_CODES,
    Category,
    Flow,
    FlowChoice,
    FlowNode,
    KbError,
    Problem,
    Script,
)
from .paths import default_kb_dir
from .render import ADDRESS_VARIABLE, COMPUTED_VARIABLES, ENV, render_script, render_strict
from .search import SYNONYM_WEIGHT, TYPO_WEIGHT, QueryRewrites
from bot.yamlsrc import MarkedDict, MarkedList, YamlProblem, read_yaml, text_start_line

#: Telegram's limit for one message, after entity parsing.
TELEGRAM_MESSAGE_LIMIT = 4096
ID_RE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
FLOW_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")

SCRIPT_REQUIRED = ("id", "title", "category", "keywords", "phrasings", "body", "variables", "note")
SCRIPT_OPTIONAL = ("related", "platforms", "search_only")
REQUIRED_TEXTS = ("render_error",)
#: Sample text for every variable when checking that a body renders and fits in one message.
SAMPLE_VALUE = "8" * 24


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, file: Path | str, line: int, message: str) -> None:
        self.problems.append(Problem(str(file), max(int(line), 1), message))


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def _text_list(value: Any) -> Any:
    """Numbers in keyword lists (12315, 618) are meant as text: YAML just parsed them as numbers."""
    if isinstance(value, list):
        return [str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in value]
    return value


def _squash(text: str) -> str:
    """Lower-case text without spaces/punctuation, so 好 评 返 现 still matches 好评返现."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")


def _read(path: Path, out: _Collector) -> Any:
    try:
        data = read_yaml(path)
    except YamlProblem as exc:
        out.add(path, exc.line, exc.message)
        return None
    for mapping in _walk_mappings(data):
        for key, line in mapping.duplicate_keys:
            out.add(path, line, f"duplicate key {key!r}")
    return data


def _walk_mappings(data: Any) -> Iterable[MarkedDict]:
    if isinstance(data, MarkedDict):
        yield data
        for value in data.values():
            yield from _walk_mappings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _walk_mappings(value)


def _load_categories(path: Path, out: _Collector) -> tuple[list[Category], dict[str, str]]:
    data = _read(path, out)
    if data is None:
        return [], {}
    if not isinstance(data, MarkedDict) or not isinstance(data.get("categories"), list):
        out.add(path, getattr(data, "line", 1), "expected a mapping with a 'categories' list")
        return [], {}
    categories: list[Category] = []
    seen: dict[str, int] = {}
    items: MarkedList = data["categories"]
    for index, item in enumerate(items):
        line = items.line_of(index)
        if not isinstance(item, MarkedDict):
            out.add(path, line, "a category must be a mapping")
            continue
        code, label = item.get("code"), item.get("label")
        description, order = item.get("description", ""), item.get("order")
        keywords = _text_list(item.get("keywords", []))
        unknown = set(item) - {"code", "label", "description", "order", "keywords", "escalate"}
        for key in sorted(unknown, key=str):
            out.add(path, item.line_of(key), f"unknown category field {key!r}")
        if code not in CATEGORY_CODES:
            out.add(path, item.line_of("code"), f"unknown category code {code!r} (allowed: {', '.join(CATEGORY_CODES)})")
            continue
        if code in seen:
            out.add(path, item.line_of("code"), f"category {code!r} repeated (first on line {seen[code]})")
            continue
        seen[code] = item.line_of("code")
        if not isinstance(label, str) or not label.strip():
            out.add(path, item.line_of("label"), f"category {code}: label must be a non-empty string")
            continue
        if not isinstance(order, int) or isinstance(order, bool):
            out.add(path, item.line_of("order"), f"category {code}: order must be an integer")
            continue
        if not isinstance(description, str) or not (keywords == [] or _is_str_list(keywords)):
            out.add(path, line, f"category {code}: description must be text and keywords a list of text")
            continue
        categories.append(
            Category(code, label.strip(), description.strip(), order, tuple(keywords), bool(item.get("escalate", False)))
        )
    for code in CATEGORY_CODES:
        if code not in seen:
            out.add(path, items.line, f"category {code!r} is missing")
    platforms = data.get("platforms", {})
    if not isinstance(platforms, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in platforms.items()
    ):
        out.add(path, data.line_of("platforms"), "platforms must map a code to its name")
        platforms = {}
    return sorted(categories, key=lambda c: (c.order, c.code)), dict(platforms)


def _load_flat_mapping(path: Path, out: _Collector, what: str) -> dict[str, Any]:
    data = _read(path, out)
    if data is None:
        return {}
    if not isinstance(data, MarkedDict):
        out.add(path, 1, f"{what} must be a mapping of name: value")
        return {}
    for key in data:
        if not isinstance(key, str) or not NAME_RE.match(key):
            out.add(path, data.line_of(key), f"{what} name {key!r} must be lower_snake_case")
    return dict(data)


def _load_forbidden(path: Path, out: _Collector) -> list[str]:
    data = _read(path, out)
    if data is None:
        return []
    phrases = data.get("phrases") if isinstance(data, MarkedDict) else None
    if not _is_str_list(phrases):
        out.add(path, getattr(data, "line", 1), "expected a mapping with a 'phrases' list of text")
        return []
    return [p.strip() for p in phrases]


SYNONYMS_FILE = "synonyms.yaml"
SYNONYMS_KEYS = ("filler", "typos", "synonyms", "traditional")


def _load_rewrites(path: Path, out: _Collector, scripts: list[Script], categories: list[Category]) -> QueryRewrites:
    """The optional synonyms.yaml: chat filler, typos, buyer synonyms, traditional characters."""
    if not path.is_file():
        return QueryRewrites()
    data = _read(path, out)
    if data is None:
        return QueryRewrites()
    if not isinstance(data, MarkedDict):
        out.add(path, 1, "synonyms: expected a mapping with " + ", ".join(SYNONYMS_KEYS))
        return QueryRewrites()
    for key in data:
        if key not in SYNONYMS_KEYS:
            out.add(path, data.line_of(key), f"synonyms: unknown section {key!r} (known: {', '.join(SYNONYMS_KEYS)})")
    filler = _text_list(data.get("filler", []))
    if not _is_str_list(filler):
        out.add(path, data.line_of("filler"), "synonyms: 'filler' must be a list of text")
        filler = []
    expansions: list[tuple[str, str, float]] = []
    typos = data.get("typos", {})
    if not isinstance(typos, MarkedDict) or not all(
        isinstance(k, str) and isinstance(v, str) and k.strip() and v.strip() for k, v in typos.items()
    ):
        out.add(path, data.line_of("typos"), "synonyms: 'typos' must map a misspelling to the right word")
        typos = {}
    for wrong, right in typos.items():
        expansions.append((_normal(wrong), right.strip(), TYPO_WEIGHT))
    synonyms = data.get("synonyms", {})
    if not isinstance(synonyms, MarkedDict):
        out.add(path, data.line_of("synonyms"), "synonyms: 'synonyms' must map a word to a list of buyer words")
        synonyms = MarkedDict()
    for word, variants in synonyms.items():
        variants = _text_list(variants)
        if not isinstance(word, str) or not word.strip() or not _is_str_list(variants):
            out.add(path, synonyms.line_of(word), f"synonyms: {word!r} needs a list of buyer words")
            continue
        for variant in variants:
            if _normal(variant) == _normal(word):
                out.add(path, synonyms.line_of(word), f"synonyms: {variant!r} is the word itself")
            expansions.append((_normal(variant), word.strip(), SYNONYM_WEIGHT))
    chars: dict[int, str] = {}
    pairs = data.get("traditional", "")
    if not isinstance(pairs, str):
        out.add(path, data.line_of("traditional"), "synonyms: 'traditional' must be text: pairs of 繁简 characters")
        pairs = ""
    pairs = "".join(pairs.split())
    if len(pairs) % 2:
        out.add(path, data.line_of("traditional"), "synonyms: 'traditional' must be pairs of characters (繁简繁简…)")
        pairs = pairs[:-1]
    # A character the knowledge base itself uses is simplified Chinese there: never rewrite it.
    own = set("".join(f"{s.title}{''.join(s.keywords)}{''.join(s.phrasings)}{s.body}" for s in scripts))
    own |= set("".join(f"{c.label}{c.description}{''.join(c.keywords)}" for c in categories))
    for old, new in zip(pairs[0::2], pairs[1::2]):
        if old != new and old not in own:
            chars.setdefault(ord(old), new)
    ordered_filler = tuple(sorted({_normal(f) for f in filler}, key=len, reverse=True))
    return QueryRewrites(chars=chars, filler=ordered_filler, expansions=tuple(expansions))


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower().strip()


def _policy_names_used(tree: nodes.Template) -> Iterable[tuple[str, int]]:
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node.node, nodes.Name) and node.node.name == "policy":
            if isinstance(node, nodes.Getattr):
                yield node.attr, node.lineno
            elif isinstance(node.arg, nodes.Const):
                yield str(node.arg.value), node.lineno


def _check_script(
    item: MarkedDict,
    path: Path,
    out: _Collector,
    known_categories: set[str],
    known_platforms: set[str],
    policy: dict[str, Any],
    forbidden: list[str],
    texts: dict[str, Any],
) -> Script | None:
    before = len(out.problems)
    label = f"script {item.get('id')!r}" if isinstance(item.get("id"), str) else "script"
    for key in SCRIPT_REQUIRED:
        if key not in item:
            out.add(path, item.line, f"{label}: missing field {key!r}")
    for key in item:
        if key not in SCRIPT_REQUIRED and key not in SCRIPT_OPTIONAL:
            out.add(path, item.line_of(key), f"{label}: unknown field {key!r}")
    if len(out.problems) > before:
        return None
    for key in ("keywords", "phrasings"):
        item[key] = _text_list(item[key])
    sid = item["id"]
    if not isinstance(sid, str) or not ID_RE.match(sid):
        out.add(path, item.line_of("id"), f"script id {sid!r} must be 2-40 chars of a-z, 0-9, _ starting with a letter")
    for key in ("title", "body", "note", "category"):
        if not isinstance(item[key], str) or not item[key].strip():
            out.add(path, item.line_of(key), f"{label}: {key} must be non-empty text")
    for key in ("keywords", "phrasings"):
        if not _is_str_list(item[key]) or not item[key]:
            out.add(path, item.line_of(key), f"{label}: {key} must be a non-empty list of text")
    for key in ("related", "platforms"):
        if key in item and not _is_str_list(item[key]):
            out.add(path, item.line_of(key), f"{label}: {key} must be a list of text")
    if not isinstance(item.get("search_only", False), bool):
        out.add(path, item.line_of("search_only"), f"{label}: search_only must be true or false")
    variables = item["variables"] if item["variables"] is not None else {}
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in variables.items()
    ):
        out.add(path, item.line_of("variables"), f"{label}: variables must map each name to a description")
        variables = {}
    if len(out.problems) > before:
        return None
    if item["category"] not in known_categories:
        out.add(path, item.line_of("category"), f"{label}: unknown category {item['category']!r}")
    for platform in item.get("platforms", []):
        if platform not in known_platforms:
            out.add(path, item.line_of("platforms"), f"{label}: unknown platform {platform!r}")
    for name in variables:
        if name == "policy" or not NAME_RE.match(name):
            out.add(path, item.line_of("variables"), f"{label}: bad variable name {name!r}")

    body: str = item["body"]
    body_line = text_start_line(item, "body")
    template = None
    try:
        tree = ENV.parse(body)
    except TemplateSyntaxError as exc:
        out.add(path, body_line + (exc.lineno or 1) - 1, f"{label}: Jinja2 syntax error: {exc.message}")
        tree = None
    if tree is not None:
        used = meta.find_undeclared_variables(tree) - {"policy"} - set(COMPUTED_VARIABLES)
        if ADDRESS_VARIABLE in meta.find_undeclared_variables(tree) and checks.address_form(policy, None) is None:
            out.add(path, body_line, f"{label}: {{{{ {ADDRESS_VARIABLE} }}}} needs policy.{checks.ADDRESS_FORM_KEY}")
        for name in sorted(used - set(variables)):
            out.add(path, item.line_of("variables"), f"{label}: variable {name!r} is used in the body but not declared")
        for name in sorted(set(variables) - used):
            out.add(path, item.line_of("variables"), f"{label}: variable {name!r} is declared but not used")
        for name, lineno in _policy_names_used(tree):
            if name not in policy:
                out.add(path, body_line + lineno - 1, f"{label}: policy.{name} is not in policy.yaml")
        if len(out.problems) == before:
            template = ENV.from_string(body)
    note = _render_note(item, path, out, label, policy)
    script = Script(
        id=sid,
        title=item["title"].strip(),
        category=item["category"],
        keywords=tuple(k.strip() for k in item["keywords"]),
        phrasings=tuple(p.strip() for p in item["phrasings"]),
        body=body,
        variables=dict(variables),
        note=note,
        related=tuple(item.get("related", ())),
        platforms=tuple(item.get("platforms", ())),
        search_only=item.get("search_only") is True,
        error_marker=str(texts.get("render_error", "【!】")),
        source=f"{path}:{item.line}",
        template=template,
    )
    if template is not None:
        try:
            sampled = render_strict(body, {name: SAMPLE_VALUE for name in variables}, policy)
        except Exception as exc:  # noqa: BLE001 - any failure is a problem to report
            out.add(path, body_line, f"{label}: body does not render with sample values: {exc}")
            return None
        slotted = render_script(script, {}, policy)
        longest = max(len(sampled), len(slotted))
        if longest > TELEGRAM_MESSAGE_LIMIT:
            out.add(path, body_line, f"{label}: rendered body is {longest} characters, over Telegram's {TELEGRAM_MESSAGE_LIMIT}")
        if len(script.note) > TELEGRAM_MESSAGE_LIMIT:
            out.add(path, item.line_of("note"), f"{label}: note is over {TELEGRAM_MESSAGE_LIMIT} characters")
        for text in (body, sampled):
            squashed = _squash(text)
            hits = [p for p in forbidden if _squash(p) and _squash(p) in squashed]
            if hits:
                out.add(path, body_line, f"{label}: forbidden phrase {hits[0]!r} in the body")
                break
    return script if len(out.problems) == before else None


def _render_note(item: MarkedDict, path: Path, out: _Collector, label: str, policy: dict[str, Any]) -> str:
    """Notes may mention shop policy ({{ policy.compensation_cap }}元) and nothing else."""
    note: str = item["note"]
    if "{" not in note:
        return note.strip()
    note_line = text_start_line(item, "note")
    try:
        tree = ENV.parse(note)
    except TemplateSyntaxError as exc:
        out.add(path, note_line + (exc.lineno or 1) - 1, f"{label}: Jinja2 syntax error in note: {exc.message}")
        return note.strip()
    for name in sorted(meta.find_undeclared_variables(tree) - {"policy"}):
        out.add(path, note_line, f"{label}: the note may only use policy values, not {name!r}")
    for name, lineno in _policy_names_used(tree):
        if name not in policy:
            out.add(path, note_line + lineno - 1, f"{label}: policy.{name} is not in policy.yaml")
    try:
        return render_strict(note, {}, policy)
    except Exception as exc:  # noqa: BLE001
        out.add(path, note_line, f"{label}: note does not render: {exc}")
        return note.strip()


def _load_scripts(
    kb_dir: Path, out: _Collector, categories: list[Category], platforms: dict[str, str],
    policy: dict[str, Any], forbidden: list[str], texts: dict[str, Any],
) -> tuple[list[Script], set[str] | None]:
    """The valid scripts, and every id defined (None when a file could not be parsed at all)."""
    scripts: list[Script] = []
    where: dict[str, tuple[Path, int, Any]] = {}
    unreadable = False
    files = sorted((kb_dir / "scripts").glob("*.yaml"))
    if not files:
        out.add(kb_dir / "scripts", 1, "no script files (scripts/*.yaml)")
    known = {c.code for c in categories}
    for path in files:
        data = _read(path, out)
        if data is None:
            unreadable = True
            continue
        if not isinstance(data, MarkedList):
            out.add(path, getattr(data, "line", 1), "a scripts file must be a list of scripts")
            continue
        for index, item in enumerate(data):
            if not isinstance(item, MarkedDict):
                out.add(path, data.line_of(index), "a script must be a mapping")
                continue
            sid = item.get("id")
            if isinstance(sid, str) and sid in where:
                first_path, first_line, _ = where[sid]
                out.add(path, item.line_of("id"), f"duplicate script id {sid!r} (first at {first_path}:{first_line})")
                continue
            if isinstance(sid, str):
                where[sid] = (path, item.line_of("id"), item)
            script = _check_script(item, path, out, known, set(platforms), policy, forbidden, texts)
            if script is not None:
                scripts.append(script)
    for sid, (path, _, item) in where.items():
        for related in item.get("related", []) if isinstance(item.get("related"), list) else []:
            if related == sid:
                out.add(path, item.line_of("related"), f"script {sid!r}: related lists itself")
            elif related not in where:
                out.add(path, item.line_of("related"), f"script {sid!r}: related script {related!r} does not exist")
    counts = {c.code: 0 for c in categories}
    for script in scripts:
        counts[script.category] = counts.get(script.category, 0) + 1
    for code, count in counts.items():
        if count == 0 and not out.problems:
            out.add(kb_dir / "categories.yaml", 1, f"category {code!r} has no scripts")
    return scripts, (None if unreadable else set(where))


def _flow_text(value: Any, policy: dict[str, Any]) -> str:
    """Flow questions may mention policy numbers ({{ policy.return_days }}天内)."""
    return render_strict(value, {}, policy) if "{" in value else value.strip()


def _load_flow(path: Path, out: _Collector, script_ids: set[str] | None, policy: dict[str, Any]) -> Flow | None:
    """One flow file; script references are checked unless `script_ids` is None (unknown)."""
    data = _read(path, out)
    if data is None:
        return None
    before = len(out.problems)
    if not isinstance(data, MarkedDict):
        out.add(path, 1, "a flow file must be a mapping")
        return None
    for key in ("id", "stage", "title", "start", "nodes"):
        if key not in data:
            out.add(path, data.line, f"flow: missing field {key!r}")
    for key in data:
        if key not in ("id", "stage", "title", "order", "start", "nodes"):
            out.add(path, data.line_of(key), f"flow: unknown field {key!r}")
    if len(out.problems) > before:
        return None
    if not isinstance(data["id"], str) or not FLOW_ID_RE.match(data["id"]):
        out.add(path, data.line_of("id"), f"flow id {data['id']!r} must be 1-20 chars of a-z, 0-9, _")
    raw_nodes = data["nodes"]
    if not isinstance(raw_nodes, MarkedDict) or not raw_nodes:
        out.add(path, data.line_of("nodes"), "flow: nodes must be a mapping of node id to node")
        return None
    built: dict[str, FlowNode] = {}
    edges: dict[str, list[str]] = {}
    for node_id, node in raw_nodes.items():
        line = raw_nodes.line_of(node_id)
        if not isinstance(node_id, str) or not FLOW_ID_RE.match(node_id):
            out.add(path, line, f"flow node id {node_id!r} must be 1-20 chars of a-z, 0-9, _")
            continue
        if not isinstance(node, MarkedDict):
            out.add(path, line, f"flow node {node_id!r} must be a mapping")
            continue
        for key in node:
            if key not in ("ask", "choices", "send", "checklist", "note"):
                out.add(path, node.line_of(key), f"flow node {node_id!r}: unknown field {key!r}")
        has_question, has_outcome = "choices" in node, "send" in node
        if has_question == has_outcome:
            out.add(path, line, f"flow node {node_id!r}: needs either 'ask'+'choices' or 'send'(+'checklist')")
            continue
        try:
            if has_question:
                choices = node["choices"]
                if not isinstance(node.get("ask"), str) or not isinstance(choices, list) or not 2 <= len(choices) <= 8:
                    out.add(path, line, f"flow node {node_id!r}: 'ask' text and 2-8 choices required")
                    continue
                parsed = []
                for index, choice in enumerate(choices):
                    if not isinstance(choice, MarkedDict) or not isinstance(choice.get("label"), str) or not isinstance(choice.get("next"), str):
                        out.add(path, choices.line_of(index), f"flow node {node_id!r}: a choice needs 'label' and 'next'")
                        continue
                    parsed.append(FlowChoice(_flow_text(choice["label"], policy), choice["next"]))
                    if choice["next"] not in raw_nodes:
                        out.add(path, choice.line_of("next"), f"flow node {node_id!r}: next node {choice['next']!r} does not exist")
                edges[node_id] = [c.next for c in parsed]
                built[node_id] = FlowNode(node_id, ask=_flow_text(node["ask"], policy), choices=tuple(parsed))
            else:
                send, checklist = node["send"], node.get("checklist", [])
                if not _is_str_list(send) or not send:
                    out.add(path, node.line_of("send"), f"flow node {node_id!r}: send must list script ids")
                    continue
                if not _is_str_list(checklist) and checklist != []:
                    out.add(path, node.line_of("checklist"), f"flow node {node_id!r}: checklist must be a list of text")
                    continue
                for sid in send:
                    if script_ids is not None and sid not in script_ids:
                        out.add(path, node.line_of("send"), f"flow node {node_id!r}: script {sid!r} does not exist")
                note = node.get("note", "")
                edges[node_id] = []
                built[node_id] = FlowNode(
                    node_id,
                    send=tuple(send),
                    checklist=tuple(_flow_text(c, policy) for c in checklist),
                    note=_flow_text(note, policy) if isinstance(note, str) else "",
                )
        except Exception as exc:  # noqa: BLE001 - a bad {{ }} in a flow text
            out.add(path, line, f"flow node {node_id!r}: text does not render: {exc}")
    start = data["start"]
    if start not in raw_nodes:
        out.add(path, data.line_of("start"), f"flow: start node {start!r} does not exist")
    elif len(out.problems) == before:
        _check_flow_graph(path, out, raw_nodes, edges, start)
        if len(out.problems) == before:
            checks.check_flow_choices(path, raw_nodes, built, out.add)
    if len(out.problems) > before:
        return None
    order = data.get("order", 0)
    return Flow(
        id=data["id"], stage=str(data["stage"]).strip(), title=str(data["title"]).strip(),
        order=order if isinstance(order, int) else 0, start=start, nodes=built,
    )


def _check_flow_graph(path: Path, out: _Collector, raw_nodes: MarkedDict, edges: dict[str, list[str]], start: str) -> None:
    """Every node reachable from the start, and no way to go round in circles."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node_id: str) -> None:
        state[node_id] = 1
        for nxt in edges.get(node_id, []):
            if state.get(nxt) == 1:
                out.add(path, raw_nodes.line_of(node_id), f"flow: cycle through node {nxt!r}")
            elif nxt not in state:
                visit(nxt)
        state[node_id] = 2

    visit(start)
    for node_id in raw_nodes:
        if node_id not in state:
            out.add(path, raw_nodes.line_of(node_id), f"flow: node {node_id!r} cannot be reached from {start!r}")


def collect(kb_dir: Path) -> tuple[KnowledgeBase | None, list[Problem]]:
    """Load and validate; the knowledge base is None whenever any problem was found."""
    out = _Collector()
    if not kb_dir.is_dir():
        out.add(kb_dir, 1, "knowledge base directory not found")
        return None, out.problems
    required = {name: kb_dir / name for name in ("categories.yaml", "policy.yaml", "forbidden.yaml", "texts.yaml")}
    for name, path in required.items():
        if not path.is_file():
            out.add(path, 1, f"missing {name}")
    if out.problems:
        return None, out.problems
    categories, platforms = _load_categories(required["categories.yaml"], out)
    policy = _load_flat_mapping(required["policy.yaml"], out, "policy")
    checks.check_policy(required["policy.yaml"], policy, platforms, out.add)
    texts = _load_flat_mapping(required["texts.yaml"], out, "text")
    for key in REQUIRED_TEXTS:
        if texts and key not in texts:
            out.add(required["texts.yaml"], 1, f"missing text {key!r}")
    forbidden = _load_forbidden(required["forbidden.yaml"], out)
    scripts, script_ids = _load_scripts(kb_dir, out, categories, platforms, policy, forbidden, texts)
    flows: list[Flow] = []
    seen_flows: dict[str, Path] = {}
    for path in sorted((kb_dir / "flows").glob("*.yaml")):
        flow = _load_flow(path, out, script_ids, policy)
        if flow is None:
            continue
        if flow.id in seen_flows:
            out.add(path, 1, f"duplicate flow id {flow.id!r} (also in {seen_flows[flow.id]})")
            continue
        seen_flows[flow.id] = path
        flows.append(flow)
    if not out.problems:  # a flow or script that failed to load would make this noise
        checks.check_reachable(scripts, flows, out.add)
    rewrites = _load_rewrites(kb_dir / SYNONYMS_FILE, out, scripts, categories)
    if out.problems:
        return None, out.problems
    kb = KnowledgeBase(
        path=kb_dir, categories=categories, scripts=scripts, policy=policy, flows=flows,
        texts={k: str(v) for k, v in texts.items()}, platforms=platforms, forbidden=forbidden, rewrites=rewrites,
    )
    return kb, []


def load_kb(path: str | Path | None = None) -> KnowledgeBase:
    """The knowledge base in `path` (default: KEFU_KB_DIR or <repo>/scripts_kb); KbError if invalid."""
    kb_dir = Path(path) if path is not None else default_kb_dir()
    kb, problems = collect(kb_dir)
    if kb is None:
        raise KbError(problems)
    return kb
