"""Message rendering. Every word users read comes from templates/ (Jinja2) or templates/labels.yaml.

Templates ending in `.html` are Telegram messages (HTML parse mode) and are autoescaped, so
anything a user typed is safe to echo back. `.txt` templates are plain text for the CLI.
Short strings (button captions, role and shift names, error messages) live in labels.yaml as
Jinja2 snippets, looked up with `label("buttons.claim")` or `message("errors.admin_only")`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from bot import PROJECT_ROOT

TEMPLATES_DIR = PROJECT_ROOT / "templates"
TELEGRAM_TEXT_LIMIT = 4096


class Renderer:
    def __init__(self, tz: tzinfo, templates_dir: Path = TEMPLATES_DIR) -> None:
        self.tz = tz
        self.templates_dir = templates_dir
        self.env = Environment(
            loader=FileSystemLoader(str(templates_dir)),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,  # templates are compiled once per process, not stat()-ed per render
        )
        self.env.filters.update(
            localtime=self.localtime,
            role_label=self.role_label,
            shift_label=self.shift_label,
            mask_phone=mask_phone,
        )
        self.env.globals.update(L=self.labels, label=self.label)
        #: label key -> its compiled snippet (or the plain string): compiled once, on first use.
        self._compiled_labels: dict[str, Any] = {}

    @cached_property
    def labels(self) -> dict[str, Any]:
        """labels.yaml merged with each feature's templates/labels/<feature>.yaml."""
        files = [self.templates_dir / "labels.yaml", *sorted((self.templates_dir / "labels").glob("*.yaml"))]
        merged: dict[str, Any] = {}
        for path in files:
            with open(path, encoding="utf-8") as handle:
                _deep_merge(merged, yaml.safe_load(handle) or {}, str(path))
        return merged

    def render(self, name: str, **context: Any) -> str:
        """Render a template file; surrounding blank lines are trimmed."""
        return self.env.get_template(name).render(**context).strip()

    def label(self, key: str, **context: Any) -> str:
        """A short text from labels.yaml (dotted key), rendered with the context. Each snippet is
        compiled once per process (compiling is ~30x the cost of rendering; issue 13)."""
        compiled = self._compiled_labels.get(key)
        if compiled is None:
            node: Any = self.labels
            for part in key.split("."):
                node = node[part]
            if not isinstance(node, str):
                raise KeyError(f"label {key!r} is not a string")
            compiled = self.env.from_string(node) if "{" in node else node
            self._compiled_labels[key] = compiled
        if isinstance(compiled, str):
            return compiled
        return str(compiled.render(**context))

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

    def role_label(self, role: Any) -> str:
        code = getattr(role, "code", role)
        return self.labels["roles"].get(code, str(code))

    def shift_label(self, name: str | None) -> str:
        if not name:
            return self.labels["shifts"]["none"]
        return self.labels["shifts"].get(name, name)


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


def split_text(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> Iterator[str]:
    """Split a long message between blocks (blank lines), then lines, to fit Telegram's limit.

    Templates keep HTML tags within one line, so a split never cuts a tag in two.
    """
    chunk = ""
    for block in text.split("\n\n"):
        candidate = f"{chunk}\n\n{block}" if chunk else block
        if len(candidate) <= limit:
            chunk = candidate
            continue
        if chunk:
            yield chunk
        chunk = ""
        for line in block.split("\n"):
            candidate = f"{chunk}\n{line}" if chunk else line
            if len(candidate) <= limit:
                chunk = candidate
            else:
                if chunk:
                    yield chunk
                while len(line) > limit:
                    yield line[:limit]
                    line = line[limit:]
                chunk = line
    if chunk:
        yield chunk
