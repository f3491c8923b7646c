"""Issue 16, "20 小时 vs 20.1 小时": one `duration` filter writes every length of time, so the
same duration reads the same on a reminder card, an order card, a handover card, /handover_stats
and the sandbox clock."""

import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.render import Renderer

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"


@pytest.fixture(scope="module")
def renderer():
    return Renderer(ZoneInfo("Asia/Shanghai"))


@pytest.mark.parametrize("seconds, shown", [
    (0, "1 分钟"),
    (59, "1 分钟"),
    (60 * 45 + 59, "45 分钟"),
    (3600, "1 小时"),
    (20 * 3600, "20 小时"),
    (20 * 3600 + 6 * 60 + 30, "20 小时 6 分钟"),  # never "20.1 小时"
    (20 * 3600 + 59 * 60 + 59, "20 小时 59 分钟"),  # rounded down: not "21 小时" yet
    (5.5 * 3600, "5 小时 30 分钟"),
    (24 * 3600, "1 天"),
    (50 * 3600 + 40 * 60, "2 天 2 小时"),
    (-(2 * 3600 + 5 * 60), "2 小时 5 分钟"),  # a time already past: its length
])
def test_duration_filter(renderer, seconds, shown):
    assert renderer.env.from_string("{{ s | duration }}").render(s=seconds) == shown


def test_timedelta_and_none(renderer):
    assert renderer.duration(timedelta(days=1, hours=1)) == "1 天 1 小时"
    assert renderer.duration(None) == "-"


@pytest.mark.parametrize("seconds", [20 * 3600, 20 * 3600 + 6 * 60 + 30, 3 * 3600 + 59 * 60, 26 * 3600, 45 * 60])
def test_every_place_writes_the_same_duration_the_same_way(renderer, seconds):
    """The reminder cards and digests and the order card (reminders/_macros.html duration), the
    handover cards (handover/_macros.html span/ago, in minutes) and the filter itself agree."""
    reminder = renderer.env.from_string('{% import "reminders/_macros.html" as m %}{{ m.duration(s) }}').render(s=seconds)
    handover = renderer.env.from_string('{% import "handover/_macros.html" as m %}{{ m.span(s // 60) }}').render(s=seconds)
    assert reminder == handover == renderer.duration(seconds)
    assert "." not in reminder


def test_no_template_formats_hours_by_itself():
    """Hours and minutes are worked out in one place (the filter); a template that divides by
    3600 or 1440 itself, or rounds hours to a decimal, would bring the mismatch back."""
    offenders = []
    for path in sorted(TEMPLATES.rglob("*")):
        if path.suffix not in (".html", ".txt", ".yaml", ".j2"):
            continue
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"\{[{%][^}]*(?:/ *3600|// *3600|% *3600|/ *1440|// *1440|% *1440|round\(1\))[^}]*[}%]\}", text):
            offenders.append(f"{path.relative_to(TEMPLATES)}: {match[0]}")
    assert offenders == []
