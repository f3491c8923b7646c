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


def test_a_rendered_label_is_kept_per_key_and_typed_values(tmp_path):
    """Labels rendered with plain values are kept (issue 13, CPU per update): the same key and
    values give the kept text, and values that are equal but render differently do not share
    it (Markup is not escaped, a str is; True is not 1)."""
    from markupsafe import Markup

    from bot.render import KEPT_LABELS, Renderer

    (tmp_path / "labels").mkdir()
    (tmp_path / "labels.yaml").write_text(
        'title: "《{{ title }}》"\ncount: "{{ n }} 条"\nitems: "{{ items | join(\'、\') }}"\nplain: "你好"\n',
        encoding="utf-8")
    renderer = Renderer(ZoneInfo("Asia/Shanghai"), templates_dir=tmp_path)
    for _ in range(2):
        assert renderer.label("title", title="B&C") == "《B&amp;C》"
        assert renderer.label("title", title=Markup("B&C")) == "《B&C》"
        assert renderer.label("count", n=True) == "True 条" and renderer.label("count", n=1) == "1 条"
        assert renderer.label("items", items=["a", "b"]) == "a、b"  # a list: rendered each time
        assert renderer.label("plain") == "你好"
    assert len(renderer._rendered_labels) == 4
    for i in range(KEPT_LABELS + 5):  # bounded
        assert renderer.label("count", n=i) == f"{i} 条"
    assert len(renderer._rendered_labels) <= KEPT_LABELS


def test_warm_compiles_every_template_and_label_before_first_use(tmp_path):
    """The bot compiles everything once after it starts answering (issue 13, p99: the first
    /handover of a run paid ~5-20 ms of compiling): afterwards no render or label compiles."""
    from bot.render import Renderer

    (tmp_path / "labels").mkdir()
    (tmp_path / "labels.yaml").write_text('a:\n  b: "第 {{ n }} 条"\n  plain: "你好"\ntrue: "是"\n', encoding="utf-8")
    (tmp_path / "labels" / "x.yaml").write_text('x:\n  c: "{{ who }} 来了"\n', encoding="utf-8")
    (tmp_path / "card.html").write_text("<b>{{ label('a.b', n=n) }}</b>", encoding="utf-8")
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "line.txt").write_text("{{ x }}", encoding="utf-8")
    renderer = Renderer(ZoneInfo("UTC"), templates_dir=tmp_path)
    assert renderer.warm() == 2 + 3  # two templates; three addressable labels (`true:` is not a dotted key)

    compiled: list[str] = []
    original = renderer.env._compile

    def counting(source, filename):
        compiled.append(filename)
        return original(source, filename)

    renderer.env._compile = counting
    assert renderer.render("card.html", n=3) == "<b>第 3 条</b>"
    assert renderer.render("cli/line.txt", x="y") == "y"
    assert renderer.label("x.c", who="小王") == "小王 来了"
    assert renderer.label("a.plain") == "你好"
    assert compiled == []
    assert renderer.warm() == 5 and compiled == []  # a second warm-up compiles nothing again


def test_the_bots_templates_all_compile():
    assert renderer_for(ZoneInfo("Asia/Shanghai")).warm() > 100
