"""Message rendering. Every word users read comes from templates/ (Jinja2) or templates/labels.yaml.

Templates ending in `.html` are Telegram messages (HTML parse mode) and are autoescaped, so
anything a user typed is safe to echo back. `.txt` templates are plain text for the CLI.
Short strings (button captions, role and shift names, error messages) live in labels.yaml as
Jinja2 snippets, looked up with `label("buttons.claim")` or `message("errors.admin_only")`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2 import Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.bccache import Bucket
from markupsafe import Markup

from bot import PROJECT_ROOT

log = logging.getLogger(__name__)

TEMPLATES_DIR = PROJECT_ROOT / "templates"
TELEGRAM_TEXT_LIMIT = 4096
#: libyaml's safe loader when PyYAML has it (labels load ~10x faster at start-up), else PyYAML's own.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: A label rendered with values of only these types is kept (the same key and values give the
#: same text: labels read nothing but their values); others are rendered every time.
_KEPT_VALUE_TYPES = frozenset({str, Markup, int, bool, type(None)})
#: Rendered labels kept at most (button captions with script titles, role names, counts…).
KEPT_LABELS = 4096


#: The Environment's options that shape compiled template code (the cache below is keyed by them).
_AUTOESCAPED = ("html",)
_WHITESPACE = {"trim_blocks": True, "lstrip_blocks": True, "keep_trailing_newline": False}


class TemplateCache(FileSystemBytecodeCache):
    """Jinja2's cache of compiled templates on disk, so a start compiles no template it compiled
    before (issue 13: compiling all of them took ~0.6 s of CPU after every start). Jinja2 checks
    each entry against the template's source; the file names carry `key`, by default a hash of
    what else shapes the compiled code: Jinja2's version, the Environment's options and this
    module's source, where the filters are defined (how a filter is called is compiled in: review).
    A cache that cannot be read or written (a full disk, a removed directory) is passed over: the
    template is compiled as without one."""

    def __init__(self, directory: str | None = None, key: str | None = None) -> None:
        if key is None:
            shaping = repr((jinja2.__version__, _AUTOESCAPED, sorted(_WHITESPACE.items()))).encode()
            key = hashlib.sha256(shaping + Path(__file__).read_bytes()).hexdigest()[:16]
        super().__init__(directory, f"kefu-{key}-%s.cache")

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 - an unreadable entry is a miss
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError as exc:
            log.debug("compiled template not cached: %s", exc)


@functools.cache
def template_cache() -> TemplateCache | None:
    """The process's template cache, in the directory Jinja2 picks for this user (in the system's
    temporary directory, private to the user); None when there is no safe one."""
    try:
        return TemplateCache()
    except (OSError, RuntimeError) as exc:
        log.info("templates are compiled without a cache: %s", exc)
        return None


@functools.cache
def renderer_for(tz: tzinfo) -> Renderer:
    """The process's one Renderer for `tz` (templates compiled once). The composition root
    (bot/services.py) takes the bot's from here and hands it to every handler; CLI commands that
    run without services, and the UTC-only label readers, ask here too. Nothing else constructs one
    (tests/unit/core/test_renderer_once.py)."""
    return Renderer(tz)


class Renderer:
    def __init__(self, tz: tzinfo, templates_dir: Path = TEMPLATES_DIR, cache: bool = True) -> None:
        """`cache`: keep compiled templates between runs (`template_cache()`)."""
        self.tz = tz
        self.templates_dir = templates_dir
        self.env = Environment(
            loader=FileSystemLoader(str(templates_dir)),
            autoescape=select_autoescape(enabled_extensions=_AUTOESCAPED, default_for_string=True),
            undefined=StrictUndefined,
            auto_reload=False,  # templates are compiled once per process, not stat()-ed per render
            bytecode_cache=template_cache() if cache else None,
            **_WHITESPACE,
        )
        self.env.filters.update(
            localtime=self.localtime,
            role_label=self.role_label,
            shift_label=self.shift_label,
            mask_phone=mask_phone,
            duration=self.duration,
            localtime_beside=self.localtime_beside,
        )
        self.env.globals.update(L=self.labels, label=self.label)
        #: label key -> its compiled snippet (or the plain string): compiled once, on first use.
        self._compiled_labels: dict[str, Any] = {}
        #: (key, (name, type, value)…) -> the rendered label (issue 13, CPU per update).
        self._rendered_labels: dict[tuple, str] = {}

    @cached_property
    def labels(self) -> dict[str, Any]:
        """labels.yaml merged with each feature's templates/labels/<feature>.yaml."""
        files = [self.templates_dir / "labels.yaml", *sorted((self.templates_dir / "labels").glob("*.yaml"))]
        merged: dict[str, Any] = {}
        for path in files:
            with open(path, encoding="utf-8") as handle:
                _deep_merge(merged, yaml.load(handle, Loader=_SAFE_LOADER) or {}, str(path))
        return merged

    def render(self, name: str, **context: Any) -> str:
        """Render a template file; surrounding blank lines are trimmed."""
        return self.env.get_template(name).render(**context).strip()

    def label(self, key: str, **context: Any) -> str:
        """A short text from labels.yaml (dotted key), rendered with the context. Each snippet is
        compiled once per process (compiling is ~30x the cost of rendering; issue 13), and a
        label rendered with plain values (strings, numbers) is kept for the same values."""
        compiled = self._compiled_labels.get(key)
        if compiled is None:
            compiled = self._compile_label(key)
        if isinstance(compiled, str):
            return compiled
        # The value's type is part of the key: Markup("a&b") and "a&b" are equal strings but
        # render differently (escaped or not), as True and 1 do.
        if not all(type(value) in _KEPT_VALUE_TYPES for value in context.values()):
            return str(compiled.render(**context))
        memo = (key, *((name, type(value), value) for name, value in context.items()))
        text = self._rendered_labels.get(memo)
        if text is None:
            text = str(compiled.render(**context))
            if len(self._rendered_labels) >= KEPT_LABELS:
                self._rendered_labels.clear()
            self._rendered_labels[memo] = text
        return text

    def _compile_label(self, key: str) -> Any:
        node: Any = self.labels
        for part in key.split("."):
            node = node[part]
        if not isinstance(node, str):
            raise KeyError(f"label {key!r} is not a string")
        compiled = self.env.from_string(node) if "{" in node else node
        self._compiled_labels[key] = compiled
        return compiled

    def warm(self) -> int:
        """Compile every template file and every label now (issue 13: the first /handover or
        button press of a kind must not pay ~5-20 ms of Jinja2 compiling on the way to its
        answer). Thread-safe with rendering (Jinja2's template cache locks; a label compiled twice
        is the same snippet), so the bot runs it in a worker thread after it starts answering.
        Returns how many templates and labels were compiled."""
        names = [name for name in self.env.list_templates() if name.endswith((".html", ".txt"))]
        for name in names:
            self.env.get_template(name)
        keys = list(_label_keys(self.labels))
        for key in keys:
            if key not in self._compiled_labels:
                self._compile_label(key)
        return len(names) + len(keys)

    def has_label(self, key: str) -> bool:
        node: Any = self.labels
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return isinstance(node, str)

    def localtime(self, value: int | datetime | None, fmt: str = "%m-%d %H:%M") -> str:
        if value is None:
            return "-"
        moment = datetime.fromtimestamp(value, UTC) if isinstance(value, (int, float)) else value
        return moment.astimezone(self.tz).strftime(fmt)

    def localtime_beside(self, value: int | datetime | None, beside: int | datetime | str | None,
                         fmt: str = "%m-%d %H:%M", time_fmt: str = "%H:%M") -> str:
        """`value` as local time for a line that already shows `beside`'s date (a moment or an
        ISO date such as an occurrence's "2026-11-23"): the time alone when both fall on the same
        local day, else with the date, so no line says "11-23 · 11-23 16:00" (issue 16)."""
        if value is None:
            return "-"
        if beside is not None and self.localtime(value, "%Y-%m-%d") == (
                beside[:10] if isinstance(beside, str) else self.localtime(beside, "%Y-%m-%d")):
            return self.localtime(value, time_fmt)
        return self.localtime(value, fmt)

    def duration(self, value: float | timedelta | None) -> str:
        """One way to write a length of time everywhere (issue 16: "20 小时" on one card and
        "20.1 小时" on another): under an hour "N 分钟" (at least 1), under a day "H 小时 M 分钟"
        (minutes left out on the hour), from a day on "D 天 H 小时". Seconds (or a timedelta),
        rounded down; negative counts as its length. Words from labels.yaml `duration`."""
        if value is None:
            return "-"
        seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
        minutes = max(int(abs(seconds) // 60), 1)
        if minutes < 60:
            return self.label("duration.minutes", m=minutes)
        if minutes < 24 * 60:
            return self.label("duration.hours", h=minutes // 60, m=minutes % 60)
        return self.label("duration.days", d=minutes // 1440, h=minutes % 1440 // 60)

    def role_label(self, role: Any) -> str:
        code = getattr(role, "code", role)
        return self.labels["roles"].get(code, str(code))

    def shift_label(self, name: str | None) -> str:
        if not name:
            return self.labels["shifts"]["none"]
        return self.labels["shifts"].get(name, name)


def _label_keys(node: dict[Any, Any], prefix: str = "") -> Iterator[str]:
    """The dotted key of every string label under `node` (keys YAML read as other types, such
    as `true`, cannot be addressed by a dotted key and are skipped)."""
    for name, value in node.items():
        if not isinstance(name, str):
            continue
        if isinstance(value, dict):
            yield from _label_keys(value, f"{prefix}{name}.")
        elif isinstance(value, str):
            yield f"{prefix}{name}"


def _deep_merge(into: dict[str, Any], new: dict[str, Any], source: str) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value, source)
        elif key in into:
            raise ValueError(f"{source}: label {key!r} is defined twice")
        else:
            into[key] = value


_PHONE = re.compile(r"^(?:\+?86)?(1[3-9]\d)(\d{4})(\d{4})$")
_PHONE_NOISE = str.maketrans("", "", " -'\t")


def mask_phone(value: str | None) -> str:
    """138****1234 for a mainland mobile number (also written +86 138-1234-5678): agents see enough
    to match a buyer, never the whole number. Anything else is returned unchanged; None is ""."""
    if not value:
        return ""
    match = _PHONE.match(value.translate(_PHONE_NOISE))
    if not match:
        return value
    return f"{match.group(1)}****{match.group(3)}"


def looks_like_phone(text: str) -> bool:
    return bool(_PHONE.match(text.translate(_PHONE_NOISE)))


_ATOM = re.compile(r"<[^<>]*>|&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{0,30});", re.S)
_TAG_NAME = re.compile(r"<\s*(/?)\s*([a-zA-Z][\w-]*)")


def _atoms(text: str) -> Iterator[str]:
    """Tags and entities whole, every other character on its own."""
    at = 0
    for match in _ATOM.finditer(text):
        yield from text[at : match.start()]
        yield match.group()
        at = match.end()
    yield from text[at:]


def _closing(stack: list[tuple[str, str]]) -> str:
    return "".join(f"</{name}>" for _, name in reversed(stack))


def split_text(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> Iterator[str]:
    """Split a long HTML message to fit Telegram's limit, never inside a tag or an entity.

    Prefers a blank line, then a line break, else cuts between characters. Tags open at a cut
    are closed at the end of one part and opened again at the start of the next, so every part
    is valid Telegram HTML when the whole was. Parts (markup included) are at most `limit`
    characters (a single tag longer than the limit is the only exception).
    """
    if len(text) <= limit:
        if text:
            yield text
        return
    atoms = list(_atoms(text))
    count = len(atoms)
    i = 0
    stack: list[tuple[str, str]] = []
    while i < count:
        while i < count and atoms[i] == "\n":
            i += 1  # the separator at a cut is dropped
        if i >= count:
            break
        prefix = "".join(tag for tag, _ in stack)
        pieces, length, opened = [prefix], len(prefix), list(stack)
        closing_len = len(_closing(opened))
        blank = line = None  # (next atom, stack, pieces) after the last blank line / line break
        j = i
        while j < count:
            atom = atoms[j]
            after = opened
            if atom[0] == "<" and len(atom) > 1 and (tag := _TAG_NAME.match(atom)):
                closes, name = tag.group(1) == "/", tag.group(2).lower()
                if closes:
                    at = next((k for k in range(len(opened) - 1, -1, -1) if opened[k][1] == name), None)
                    after = opened if at is None else opened[:at] + opened[at + 1 :]
                else:
                    after = [*opened, (atom, name)]
            after_closing = closing_len if after is opened else len(_closing(after))
            if length + len(atom) + after_closing > limit and j > i:
                break
            pieces.append(atom)
            length += len(atom)
            opened, closing_len = after, after_closing
            j += 1
            if atom == "\n":
                mark = (j, opened, len(pieces))
                if j >= 2 and atoms[j - 2] == "\n":
                    blank = mark
                line = mark
        if j >= count:
            yield "".join(pieces) + _closing(opened)
            return
        cut = blank or line
        if cut is None or cut[0] <= i:
            cut = (j, opened, len(pieces))
        i, stack, kept = cut
        part = "".join(pieces[:kept]).rstrip("\n")
        if part.strip() and part != prefix:
            yield part + _closing(stack)
