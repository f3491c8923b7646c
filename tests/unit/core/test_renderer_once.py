"""One Renderer per process and timezone: the composition root takes it from `renderer_for` and
hands it on; no other module of the bot constructs one (templates compile once)."""

import re
from zoneinfo import ZoneInfo

from bot import PROJECT_ROOT
from bot.render import renderer_for

CONSTRUCTS = re.compile(r"\bRenderer\(")


def test_only_renderer_for_constructs_a_renderer():
    offenders = []
    for folder in ("bot", "handlers"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if CONSTRUCTS.search(line) and not line.lstrip().startswith(("class ", "#")):
                    offenders.append((str(path.relative_to(PROJECT_ROOT)), line.strip()))
    assert offenders == [("bot/render.py", "return Renderer(tz)")]


def test_renderer_for_gives_the_same_renderer_per_timezone():
    shanghai = ZoneInfo("Asia/Shanghai")
    assert renderer_for(shanghai) is renderer_for(shanghai)
    assert renderer_for(shanghai) is not renderer_for(ZoneInfo("UTC"))
