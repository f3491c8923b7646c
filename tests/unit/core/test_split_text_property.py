"""split_text (issue 12): for any valid Telegram HTML, every part is valid Telegram HTML (the
emulator's parser, which enforces Telegram's rules) within the limit, and nothing is lost."""

from __future__ import annotations

import html

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.emulator.formatting import parse_formatted
from bot.render import split_text

TAGS = [("<b>", "</b>"), ("<i>", "</i>"), ("<code>", "</code>"), ("<s>", "</s>"), ("<u>", "</u>"),
        ('<a href="https://example.com/?a=1&amp;b=2">', "</a>"), ("<tg-spoiler>", "</tg-spoiler>"),
        ("<blockquote>", "</blockquote>"), ("<pre>", "</pre>")]

words = st.text(alphabet=st.sampled_from(list("ab &<>\"'\n中文😀")), max_size=300).map(html.escape)


@st.composite
def segments(draw, depth=0):
    if depth < 2 and draw(st.booleans()):
        open_, close = draw(st.sampled_from(TAGS[:6] if depth else TAGS))
        inner = draw(st.lists(segments(depth + 1), max_size=3))
        return open_ + "".join(inner) + close
    return draw(words)


documents = st.lists(segments(), min_size=1, max_size=12).map("".join)


def visible(text: str) -> str:
    return parse_formatted(text, "HTML").plain.replace("\n", "").replace(" ", "")


@settings(max_examples=300, deadline=None)
@given(documents, st.integers(min_value=200, max_value=800))
def test_every_part_is_valid_html_within_the_limit(text, limit):
    parts = list(split_text(text, limit))
    for part in parts:
        assert len(part) <= limit
        parse_formatted(part, "HTML")  # raises BadRequest "can't parse entities" when invalid
    # only separators at the cuts may go (and the parser's trimming of leading/trailing space)
    assert "".join(visible(p) for p in parts) == visible(text)


def test_a_thousand_ampersands_split_between_entities():
    text = "交接：" + "&amp;" * 1000
    parts = list(split_text(text, 4096))
    assert len(parts) == 2
    for part in parts:
        parse_formatted(part, "HTML")
    assert "".join(parts).count("&amp;") == 1000
