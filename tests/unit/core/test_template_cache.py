"""Compiled templates are kept between runs (bot/render.py `TemplateCache`, Jinja2's bytecode
cache): a second start compiles nothing; a cache that cannot be written changes nothing else."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot.render import Renderer, TemplateCache

TZ = ZoneInfo("Asia/Shanghai")


def renderer_with(cache: TemplateCache) -> Renderer:
    renderer = Renderer(TZ, cache=False)
    renderer.env.bytecode_cache = cache
    return renderer


def compiled_by(renderer: Renderer) -> list[str]:
    """Record the templates `renderer` compiles from source (a spy on its Environment)."""
    names: list[str] = []
    compile_source = renderer.env.compile

    def spy(source, name=None, filename=None, *args, **kwargs):
        names.append(name)
        return compile_source(source, name, filename, *args, **kwargs)

    renderer.env.compile = spy
    return names


def test_a_second_start_loads_the_compiled_templates(tmp_path):
    first = renderer_with(TemplateCache(str(tmp_path)))
    first_compiled = compiled_by(first)
    text = first.render("cli/no_token.txt")
    assert first_compiled == ["cli/no_token.txt"]
    assert [p.name.startswith("kefu-") for p in tmp_path.iterdir()] == [True]

    second = renderer_with(TemplateCache(str(tmp_path)))
    second_compiled = compiled_by(second)
    assert second.render("cli/no_token.txt") == text
    assert second_compiled == []  # loaded from the cache


def test_a_changed_template_is_compiled_again(tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "labels.yaml").write_text("{}", encoding="utf-8")
    (templates / "x.txt").write_text("one", encoding="utf-8")
    (tmp_path / "cache").mkdir()
    cache = TemplateCache(str(tmp_path / "cache"))
    first = Renderer(TZ, templates_dir=templates, cache=False)
    first.env.bytecode_cache = cache
    assert first.render("x.txt") == "one"
    (templates / "x.txt").write_text("two", encoding="utf-8")
    second = Renderer(TZ, templates_dir=templates, cache=False)
    second.env.bytecode_cache = cache
    assert second.render("x.txt") == "two"


def test_a_cache_that_cannot_be_written_or_read_changes_nothing(tmp_path):
    gone = TemplateCache(str(tmp_path / "no-such-directory"))
    assert renderer_with(gone).render("cli/no_token.txt")

    (tmp_path / "cache").mkdir()
    cache = TemplateCache(str(tmp_path / "cache"))
    renderer_with(cache).render("cli/no_token.txt")
    for entry in (tmp_path / "cache").iterdir():
        entry.write_bytes(b"not a compiled template")
    again = renderer_with(TemplateCache(str(tmp_path / "cache")))
    compiled = compiled_by(again)
    assert again.render("cli/no_token.txt")
    assert compiled == ["cli/no_token.txt"]  # the broken entry was a miss


def test_code_compiled_under_other_filters_or_options_is_not_loaded(tmp_path):
    """Entries are filed under a key of what shapes compiled code besides the template (by default
    Jinja2's version, the options and bot/render.py, where the filters live): a start whose key
    differs compiles again instead of loading code made for other filters."""
    first = renderer_with(TemplateCache(str(tmp_path), key="filters-a"))
    first.render("cli/no_token.txt")
    other = renderer_with(TemplateCache(str(tmp_path), key="filters-b"))
    compiled = compiled_by(other)
    other.render("cli/no_token.txt")
    assert compiled == ["cli/no_token.txt"]
    assert TemplateCache(str(tmp_path)).pattern != TemplateCache(str(tmp_path), key="filters-a").pattern
