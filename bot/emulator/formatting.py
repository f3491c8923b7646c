"""Telegram's text formatting rules: parse_mode HTML -> visible text + entities, with its errors.

Telegram rejects malformed HTML instead of showing it, so the emulator must too: otherwise a bot
that forgets to escape user input passes every test and breaks on the first "<" in production.
One stricter rule than Telegram: a bare "&" that is not an entity is an error here (Telegram
keeps it), because it nearly always means the bot forgot html.escape().
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import bad_request

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
PARSE_MODES = {"html": "HTML", "markdown": "Markdown", "markdownv2": "MarkdownV2"}
_TRIM = " \t\r\n\v\f"

_TAG_ENTITY = {
    "b": "bold", "strong": "bold",
    "i": "italic", "em": "italic",
    "u": "underline", "ins": "underline",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "span": "spoiler", "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code", "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_ENTITY_RE = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TEXT_RUN = re.compile(r"[^<&]+")
_TAG_NAME = re.compile(r"[a-zA-Z0-9-]*")
_ATTR_NAME = re.compile(r"[a-zA-Z0-9_-]*")
_UNQUOTED_VALUE = re.compile(r"[^\s>\"']*")
_SPACES = re.compile(r"\s*")


def utf16_len(text: str) -> int:
    """Entity offsets and lengths are counted in UTF-16 code units by the Bot API."""
    return len(text.encode("utf-16-le")) // 2


def decode_entity(text: str, i: int) -> tuple[str, int] | None:
    """Decode the HTML entity at text[i] ("&"); None when it is not one Telegram knows."""
    match = _ENTITY_RE.match(text, i)
    if not match:
        return None
    named, dec, hexa = match.groups()
    if named:
        return _NAMED[named], match.end()
    code = int(dec) if dec else int(hexa, 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), match.end()


@dataclass
class FormattedText:
    """What the recipient sees: text without markup, plus the entities Telegram derived."""

    plain: str
    entities: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _OpenTag:
    name: str
    begin: int
    start16: int
    attrs: dict[str, str]


class HtmlParser:
    """A strict parser for Telegram's HTML subset; error texts follow TDLib's wording."""

    def __init__(self, text: str):
        self.text = text
        self.out: list[str] = []
        self.pos16 = 0
        self.stack: list[_OpenTag] = []
        self.entities: list[dict[str, Any]] = []

    def parse(self) -> FormattedText:
        text, i = self.text, 0
        while i < len(text):
            if text[i] == "&":
                i = self._entity(i)
            elif text.startswith("</", i):
                i = self._end_tag(i)
            elif text[i] == "<":
                i = self._start_tag(i)
            else:
                run = _TEXT_RUN.match(text, i)
                self._emit(run.group())
                i = run.end()
        if self.stack:
            raise self._error(f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"')
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return FormattedText("".join(self.out), self.entities)

    def _emit(self, chunk: str) -> None:
        self.out.append(chunk)
        self.pos16 += utf16_len(chunk)

    def _error(self, message: str, at: int | None = None):
        if at is not None:
            message += f" at byte offset {len(self.text[:at].encode('utf-8'))}"
        return bad_request(f"can't parse entities: {message}")

    def _entity(self, i: int) -> int:
        decoded = decode_entity(self.text, i)
        if decoded is None:
            raise self._error('Unsupported HTML entity or unescaped "&" (write &amp;)', i)
        self._emit(decoded[0])
        return decoded[1]

    def _attr_value(self, raw: str) -> str:
        """Attribute values: entities are decoded, a stray "&" is kept (as Telegram does)."""
        out, i = [], 0
        while i < len(raw):
            decoded = decode_entity(raw, i) if raw[i] == "&" else None
            if decoded:
                out.append(decoded[0])
                i = decoded[1]
                continue
            out.append(raw[i])
            i += 1
        return "".join(out)

    def _start_tag(self, begin: int) -> int:
        text = self.text
        name_match = _TAG_NAME.match(text, begin + 1)
        name = name_match.group().lower()
        if name not in _TAG_ENTITY:
            raise self._error(f'Unsupported start tag "{name}"', begin)
        attrs: dict[str, str] = {}
        i = name_match.end()
        while True:
            i = _SPACES.match(text, i).end()
            if i >= len(text):
                raise self._error("Unclosed start tag", begin)
            if text[i] == ">":
                i += 1
                break
            attr_match = _ATTR_NAME.match(text, i)
            attr = attr_match.group().lower()
            if not attr:
                raise self._error(f'Empty attribute name in the tag "{name}"', i)
            i = _SPACES.match(text, attr_match.end()).end()
            if i < len(text) and text[i] != "=":
                if name == "blockquote" and attr == "expandable":
                    attrs[attr] = ""
                    continue
                raise self._error(
                    f'Expected equal sign in declaration of an attribute of the tag "{name}"', begin
                )
            i = _SPACES.match(text, i + 1).end()
            if i >= len(text):
                raise self._error("Unclosed start tag", begin)
            if text[i] in "\"'":
                end = text.find(text[i], i + 1)
                if end < 0:
                    raise self._error("Unclosed start tag", begin)
                raw, i = text[i + 1 : end], end + 1
            else:
                value_match = _UNQUOTED_VALUE.match(text, i)
                raw, i = value_match.group(), value_match.end()
            attrs[attr] = self._attr_value(raw)
        self._check_attrs(name, attrs, begin)
        self.stack.append(_OpenTag(name, begin, self.pos16, attrs))
        return i

    def _check_attrs(self, name: str, attrs: dict[str, str], begin: int) -> None:
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise self._error('Tag "span" must have class "tg-spoiler"', begin)
        if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
            raise self._error("Invalid custom emoji identifier specified", begin)

    def _end_tag(self, begin: int) -> int:
        text = self.text
        name_match = _TAG_NAME.match(text, begin + 2)
        name = name_match.group().lower()
        i = _SPACES.match(text, name_match.end()).end()
        if i >= len(text) or text[i] != ">":
            raise self._error("Unclosed end tag", begin)
        if not self.stack:
            raise self._error("Unexpected end tag", begin)
        opened = self.stack.pop()
        if opened.name != name:
            raise self._error(
                f'Unmatched end tag at byte offset {len(text[:begin].encode("utf-8"))}, '
                f'expected "</{opened.name}>", found "</{name}>"'
            )
        self._close(opened)
        return i + 1

    def _close(self, tag: _OpenTag) -> None:
        length = self.pos16 - tag.start16
        entity: dict[str, Any] = {"type": _TAG_ENTITY[tag.name], "offset": tag.start16, "length": length}
        if tag.name == "a":
            if not tag.attrs.get("href"):
                return
            entity["url"] = tag.attrs["href"]
        elif tag.name == "tg-emoji":
            entity["custom_emoji_id"] = tag.attrs["emoji-id"]
        elif tag.name == "blockquote" and "expandable" in tag.attrs:
            entity["type"] = "expandable_blockquote"
        elif tag.name == "code" and tag.attrs.get("class", "").startswith("language-"):
            entity["language"] = tag.attrs["class"][len("language-") :]
        elif tag.name == "pre":
            self._merge_code_language(entity)
        if length > 0:
            self.entities.append(entity)

    def _merge_code_language(self, pre: dict[str, Any]) -> None:
        """<pre><code class="language-x"> is one pre entity with a language, as in Telegram."""
        for entity in self.entities:
            if (
                entity["type"] == "code"
                and "language" in entity
                and (entity["offset"], entity["length"]) == (pre["offset"], pre["length"])
            ):
                pre["language"] = entity["language"]
                self.entities.remove(entity)
                return


def _trim(formatted: FormattedText) -> FormattedText:
    """Telegram drops leading/trailing whitespace; entities are shifted and clipped to match."""
    plain = formatted.plain
    stripped = plain.strip(_TRIM)
    if stripped == plain:
        return formatted
    lead = utf16_len(plain[: len(plain) - len(plain.lstrip(_TRIM))])
    size = utf16_len(stripped)
    entities = []
    for entity in formatted.entities:
        start = max(0, entity["offset"] - lead)
        end = min(entity["offset"] + entity["length"] - lead, size)
        if end > start:
            entities.append({**entity, "offset": start, "length": end - start})
    return FormattedText(stripped, entities)


def parse_formatted(text: str, parse_mode: str | None, entities: Any = None) -> FormattedText:
    """Turn what the bot sent into what the user sees (no length checks)."""
    if parse_mode:
        mode = PARSE_MODES.get(str(parse_mode).lower())
        if mode is None:
            raise bad_request("unsupported parse_mode")
        if mode == "HTML":
            return _trim(HtmlParser(text).parse())
        from .markdown import parse_markdown  # local: only needed for Markdown modes

        return _trim(parse_markdown(text, v2=mode == "MarkdownV2"))
    if entities is not None and not isinstance(entities, list):
        raise bad_request("can't parse entities JSON object")
    return _trim(FormattedText(text, [dict(e) for e in entities or []]))


def format_text(
    text: Any,
    parse_mode: str | None,
    entities: Any = None,
    *,
    caption: bool = False,
) -> FormattedText:
    """Parse and enforce Telegram's limits for a message text or a caption."""
    if text is None or text == "":
        if caption:
            return FormattedText("", [])
        raise bad_request("message text is empty")
    formatted = parse_formatted(str(text), parse_mode, entities)
    if not formatted.plain and not caption:
        raise bad_request("message text is empty")
    if caption and len(formatted.plain) > MAX_CAPTION_LENGTH:
        raise bad_request("message caption is too long")
    if not caption and len(formatted.plain) > MAX_TEXT_LENGTH:
        raise bad_request("message is too long")
    return formatted
