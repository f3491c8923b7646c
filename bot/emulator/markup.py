"""Validation of reply_markup the way Telegram checks it (button data limits, URL schemes)."""

from __future__ import annotations

import json
from typing import Any

from .errors import bad_request

MAX_CALLBACK_DATA_BYTES = 64
MAX_COPY_TEXT = 256
MAX_BUTTONS = 100
_BUTTON_ACTIONS = (
    "callback_data", "url", "copy_text", "switch_inline_query", "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat", "web_app", "login_url", "callback_game", "pay",
)
_URL_SCHEMES = ("http://", "https://", "tg://")


def decode_json_field(value: Any, name: str) -> Any:
    """JSON fields normally arrive already decoded; a leftover string is decoded here."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {name} JSON object") from None
    return value


def _check_inline_button(button: Any) -> None:
    if not isinstance(button, dict):
        raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
    if not isinstance(button.get("text"), str) or not button["text"]:
        raise bad_request("can't parse inline keyboard button: Field \"text\" must be of type String")
    actions = [key for key in _BUTTON_ACTIONS if key in button]
    if not actions:
        raise bad_request("text buttons are unallowed in the inline keyboard")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = button["url"]
        if not isinstance(url, str) or not url.lower().startswith(_URL_SCHEMES) or " " in url:
            raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
    if "copy_text" in button:
        copy = button["copy_text"]
        text = copy.get("text") if isinstance(copy, dict) else None
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_COPY_TEXT:
            raise bad_request("COPY_TEXT_INVALID: copy_text.text must be 1-256 characters")


def _check_rows(rows: Any, *, inline: bool) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if sum(len(row) for row in rows) > MAX_BUTTONS:
        raise bad_request("reply markup is too long")
    for row in rows:
        for button in row:
            if inline:
                _check_inline_button(button)
            elif not isinstance(button, (str, dict)) or (isinstance(button, dict) and not button.get("text")):
                raise bad_request("can't parse keyboard button: Field \"text\" must be of type String")


def parse_reply_markup(value: Any, *, inline_only: bool = False) -> dict[str, Any] | None:
    """Validate reply_markup; inline_only for edits, which accept only inline keyboards."""
    if value is None or value == "":
        return None
    markup = decode_json_field(value, "reply keyboard markup")
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        _check_rows(markup["inline_keyboard"], inline=True)
        return markup
    if inline_only:
        raise bad_request("inline keyboard expected")
    if "keyboard" in markup:
        _check_rows(markup["keyboard"], inline=False)
    elif not ("remove_keyboard" in markup or "force_reply" in markup):
        raise bad_request("can't parse reply keyboard markup JSON object")
    return markup


def inline_buttons(markup: dict[str, Any] | None) -> list[dict[str, Any]]:
    """All inline buttons of a markup, row by row (empty for other keyboards)."""
    if not markup or "inline_keyboard" not in markup:
        return []
    return [button for row in markup["inline_keyboard"] for button in row]
