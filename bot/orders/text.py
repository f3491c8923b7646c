"""User-facing wording for orders, read from templates/orders/ so no Chinese text lives in code.

`names.j2` holds display names as template variables; `errors.j2` and `summary.j2` hold macros.
Templates come from the shared `bot.render.Renderer` environment (`.j2` files are not
autoescaped: these texts go to the terminal, CSV files and plain-text chat messages; an HTML
template that includes them escapes them itself). Template modules are built once and cached:
a macro call costs microseconds, which matters when a mangled file rejects thousands of rows.
"""

from __future__ import annotations

from datetime import UTC
from functools import cache
from typing import Any

from bot.render import renderer_for


@cache
def _environment():
    return renderer_for(UTC).env


@cache
def template_module(name: str) -> Any:
    """The module of templates/orders/<name>: its top-level variables and macros."""
    return _environment().get_template(f"orders/{name}").module


def render(template: str, macro: str, **params: Any) -> str:
    return str(getattr(template_module(template), macro)(**params)).strip()


def platform_name(code: str | None) -> str:
    return template_module("names.j2").platforms.get(code, code or "")


def status_name(code: str) -> str:
    return template_module("names.j2").statuses.get(code, code)


def format_name(code: str) -> str:
    return template_module("names.j2").formats.get(code, code)


def name_list(key: str) -> list[str]:
    return list(getattr(template_module("names.j2"), key))


def label(key: str) -> str:
    return str(getattr(template_module("names.j2"), key))


def file_error(reason: str, **params: Any) -> str:
    return render("errors.j2", "not_an_export", reason=reason, **params)


def row_error(reason: str, column: str = "", value: str = "", limit: object = "") -> str:
    return render("errors.j2", "row", reason=reason, column=column, value=value, limit=limit)


def api_error(reason: str, **params: Any) -> str:
    return render("errors.j2", "api", reason=reason, **params)
