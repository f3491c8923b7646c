"""Telegram's Markdown and MarkdownV2 parse modes (the common subset, TDLib-style errors).

MarkdownV2's escaping rules are the usual way a bot breaks on user input ("." or "-" left
unescaped), so the emulator rejects what Telegram rejects.
"""

from __future__ import annotations

from typing import Any

from .errors import bad_request
from .formatting import FormattedText, utf16_len

RESERVED_V2 = set("_*[]()~`>#+-=|{}.!")
_NAMES = {
    "bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
    "spoiler": "Spoiler", "text_link": "TextUrl", "custom_emoji": "CustomEmoji",
}


class _Builder:
    """Accumulates visible text and tracks UTF-16 positions for entity offsets."""

    def __init__(self, source: str):
        self.source = source
        self.out: list[str] = []
        self.pos16 = 0
        self.entities: list[dict[str, Any]] = []

    def emit(self, chunk: str) -> None:
        self.out.append(chunk)
        self.pos16 += utf16_len(chunk)

    def add(self, kind: str, start16: int, **extra: Any) -> None:
        if self.pos16 > start16:
            self.entities.append({"type": kind, "offset": start16, "length": self.pos16 - start16, **extra})

    def error(self, message: str, at: int | None = None):
        if at is not None:
            message += f" at byte offset {len(self.source[:at].encode('utf-8'))}"
        return bad_request(f"can't parse entities: {message}")

    def result(self) -> FormattedText:
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return FormattedText("".join(self.out), self.entities)


def _read_code(text: str, i: int, b: _Builder, fence: str, v2: bool) -> int:
    """Copy a code/pre body verbatim (only \\` and \\\\ escapes in V2) up to the closing fence."""
    start = i
    while i < len(text):
        if v2 and text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "`\\":
            b.emit(text[i + 1])
            i += 2
        elif text.startswith(fence, i):
            return i + len(fence)
        else:
            b.emit(text[i])
            i += 1
    kind = "Pre" if fence == "```" else "Code"
    raise b.error(f"Can't find end of {kind} entity", start - len(fence))


def _read_url(text: str, i: int, b: _Builder) -> tuple[str, int]:
    if i >= len(text) or text[i] != "(":
        raise b.error("Can't find end of a URL", i)
    end = text.find(")", i)
    if end < 0:
        raise b.error("Can't find end of a URL", i)
    return text[i + 1 : end].replace("\\)", ")").replace("\\\\", "\\"), end + 1


def _parse_v2(text: str) -> FormattedText:
    b = _Builder(text)
    stack: list[tuple[str, int, int]] = []  # (entity type, start16, byte position of opener)
    openers = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126:
            b.emit(text[i + 1])
            i += 2
            continue
        if c not in RESERVED_V2:
            b.emit(c)
            i += 1
            continue
        if c == "`":
            fence = "```" if text.startswith("```", i) else "`"
            start16, i = b.pos16, i + len(fence)
            language = None
            if fence == "```":
                newline = text.find("\n", i)
                if newline >= 0 and text[i:newline].strip() and " " not in text[i:newline].strip():
                    language, i = text[i:newline].strip(), newline + 1
            i = _read_code(text, i, b, fence, v2=True)
            extra = {"language": language} if language else {}
            b.add("pre" if fence == "```" else "code", start16, **extra)
            continue
        token = text[i : i + 2] if text[i : i + 2] in ("__", "||") else c
        if stack and stack[-1][0] == openers.get(token):
            kind, start16, _ = stack.pop()
            b.add(kind, start16)
            i += len(token)
        elif token in openers:
            stack.append((openers[token], b.pos16, i))
            i += len(token)
        elif c == "[" or (c == "!" and text.startswith("![", i)):
            kind = "custom_emoji" if c == "!" else "text_link"
            stack.append((kind, b.pos16, i))
            i += 2 if c == "!" else 1
        elif c == "]" and stack and stack[-1][0] in ("text_link", "custom_emoji"):
            kind, start16, _ = stack.pop()
            url, i = _read_url(text, i + 1, b)
            if kind == "custom_emoji":
                b.add(kind, start16, custom_emoji_id=url.rpartition("id=")[2])
            else:
                b.add(kind, start16, url=url)
        elif c == ">" and (i == 0 or text[i - 1] == "\n"):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            start16 = b.pos16
            inner = _parse_v2(text[i + 1 : end])
            for entity in inner.entities:
                b.entities.append({**entity, "offset": entity["offset"] + start16})
            b.emit(inner.plain)
            b.add("blockquote", start16)
            i = end
        else:
            raise b.error(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
    if stack:
        kind, _, at = stack[-1]
        raise b.error(f"Can't find end of {_NAMES[kind]} entity", at)
    return b.result()


def _parse_legacy(text: str) -> FormattedText:
    b = _Builder(text)
    i = 0
    simple = {"*": "bold", "_": "italic"}
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in "*_`[":
            b.emit(text[i + 1])
            i += 2
        elif c in simple:
            end = text.find(c, i + 1)
            if end < 0:
                raise b.error("Can't find end of the entity starting", i)
            start16 = b.pos16
            b.emit(text[i + 1 : end])
            b.add(simple[c], start16)
            i = end + 1
        elif c == "`":
            fence = "```" if text.startswith("```", i) else "`"
            start16 = b.pos16
            i = _read_code(text, i + len(fence), b, fence, v2=False)
            b.add("pre" if fence == "```" else "code", start16)
        elif c == "[":
            end = text.find("]", i + 1)
            if end < 0:
                raise b.error("Can't find end of the entity starting", i)
            start16 = b.pos16
            b.emit(text[i + 1 : end])
            url, i = _read_url(text, end + 1, b)
            b.add("text_link", start16, url=url)
        else:
            b.emit(c)
            i += 1
    return b.result()


def parse_markdown(text: str, *, v2: bool) -> FormattedText:
    return _parse_v2(text) if v2 else _parse_legacy(text)
