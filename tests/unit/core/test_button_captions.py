"""Button captions are plain text: values are never HTML-escaped (issue 12)."""

from __future__ import annotations

from types import SimpleNamespace
from zoneinfo import ZoneInfo

from bot.render import Renderer
from handlers.common import button


def test_a_caption_shows_the_value_as_typed():
    target = SimpleNamespace(bot_data={"services": SimpleNamespace(renderer=Renderer(ZoneInfo("Asia/Shanghai")))})
    made = button(target, "broadcast.buttons.role", "bc:1:role:x", name="B&C<0>")
    assert made.text == "B&C<0>"
