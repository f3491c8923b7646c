"""Filling a script's Jinja2 body with order details and the shop policy.

Rendering never raises: a missing value shows as a visible 【描述】 slot the agent fills by hand,
and a broken template falls back to the raw body under a marker, so a bad edit in scripts_kb/
can never crash a handler. Templates run in Jinja2's sandbox because shop staff write them.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .checks import address_form
from .model import Script

SLOT_FORMAT = "【{label}】"
#: Filled by rendering itself, never declared by a script: the form of address for the order's
#: platform from policy.address_form (亲 / 宝 / 您好), e.g. "{{ qin }}，您的订单……".
ADDRESS_VARIABLE = "qin"
COMPUTED_VARIABLES = (ADDRESS_VARIABLE,)

# Variable descriptions of the script being rendered, for the slot text of missing values.
_slot_labels: ContextVar[Mapping[str, str]] = ContextVar("kb_slot_labels", default={})


class SlotUndefined(ChainableUndefined):
    """A missing value: renders as 【description】 instead of an empty string."""

    __slots__ = ()

    def __str__(self) -> str:
        name = self._undefined_name or ""
        label = _slot_labels.get().get(name) or name or "?"
        return SLOT_FORMAT.format(label=label)


def _environment(undefined: type) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        undefined=undefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


#: The environment scripts are compiled and rendered in.
ENV = _environment(SlotUndefined)
#: Used only by `kb check`: any undeclared access raises, so it can be reported.
STRICT_ENV = _environment(StrictUndefined)


def parse_body(body: str) -> nodes.Template:
    """Parse a body (raises jinja2.TemplateSyntaxError)."""
    return ENV.parse(body)


def _clean_values(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """Drop empty values so they render as slots rather than as blanks."""
    cleaned: dict[str, Any] = {}
    for key, value in (values or {}).items():
        if key == "policy" or value is None:
            continue
        if isinstance(value, str) and not value.strip():
            continue
        cleaned[key] = value
    return cleaned


def _computed(context: dict[str, Any], policy: Mapping[str, Any]) -> None:
    form = address_form(policy, context.get("platform"))
    if form:
        context.setdefault(ADDRESS_VARIABLE, form)


def render_script(script: Script, values: Mapping[str, Any] | None, policy: Mapping[str, Any]) -> str:
    """The buyer-facing text of `script`: plain text, ready to copy; never raises."""
    context = _clean_values(values)
    context["policy"] = dict(policy or {})
    _computed(context, policy or {})
    token = _slot_labels.set(script.variables or {})
    try:
        template = script.template
        if template is None:
            template = ENV.from_string(script.body)
            script.template = template
        return template.render(context).strip()
    except Exception:  # noqa: BLE001 - a template must never take the bot down
        return f"{script.error_marker}\n{script.body.strip()}"
    finally:
        _slot_labels.reset(token)


def render_strict(body: str, values: Mapping[str, Any], policy: Mapping[str, Any]) -> str:
    """Render for validation: raises on anything undefined or failing."""
    context = dict(values)
    context["policy"] = dict(policy)
    _computed(context, policy)
    return STRICT_ENV.from_string(body).render(context).strip()
