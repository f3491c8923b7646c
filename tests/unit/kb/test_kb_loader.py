"""Loading and validating the knowledge base: the shipped one passes, each broken fixture fails
with the right file:line, and `kb check` exits 1 on any error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main as kb_cli
from bot.kb import CATEGORY_CODES, KbError, collect, default_kb_dir, load_kb

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "kb_broken"
SHIPPED = ROOT / "scripts_kb"


def line_of(path: Path, marker: str) -> int:
    """1-based line of the first line containing `marker` (fixtures mark their broken spot)."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if marker in line:
            return number
    raise AssertionError(f"{marker!r} not in {path}")


# case -> (file with the error, marker on the reported line, words in the message)
BROKEN = {
    "bad_yaml": ("scripts/all.yaml", 'title: "没有闭合的引号', "YAML syntax error"),
    "duplicate_id": ("scripts/all.yaml", "# 重复的 id", "duplicate script id 's_usage'"),
    "unknown_category": ("scripts/all.yaml", "category: chitchat", "unknown category 'chitchat'"),
    "undeclared_variable": ("scripts/all.yaml", "variables: {}", "'tracking_no' is used in the body but not declared"),
    "jinja_syntax": ("scripts/all.yaml", "{% endfi %}", "Jinja2 syntax error"),
    "forbidden_phrase": ("scripts/all.yaml", "好评 返现", "forbidden phrase '好评返现'"),
    "too_long": ("scripts/all.yaml", "{% for i in range(400) %}", "over Telegram's 4096"),
    "bad_flow_ref": ("flows/mini.yaml", "no_such_script", "script 'no_such_script' does not exist"),
}


def test_shipped_kb_is_valid():
    kb = load_kb(SHIPPED)
    assert len(kb) >= 60
    assert [c.code for c in kb.categories] == sorted(CATEGORY_CODES, key=lambda c: kb.category(c).order)
    assert {c.code for c in kb.categories} == set(CATEGORY_CODES)
    for code in CATEGORY_CODES:
        assert len(kb.scripts_in(code)) >= 3, code
    assert {f.stage for f in kb.flows} == {"未发货", "未收到", "已收到", "售后中"}


def test_base_fixture_is_valid():
    kb, problems = collect(FIXTURES / "_base")
    assert problems == [] and kb is not None and len(kb) == 16


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_fixture_reports_file_and_line(case):
    rel_file, marker, words = BROKEN[case]
    folder = FIXTURES / case
    with pytest.raises(KbError) as caught:
        load_kb(folder)
    problems = caught.value.problems
    expected = (str(folder / rel_file), line_of(folder / rel_file, marker))
    matching = [p for p in problems if words in p.message]
    assert matching, [str(p) for p in problems]
    assert (matching[0].file, matching[0].line) == expected, str(matching[0])
    assert str(matching[0]).startswith(f"{expected[0]}:{expected[1]}: ")
    assert len(problems) == 1, [str(p) for p in problems]  # no follow-on noise


def test_yaml_duplicate_keys_and_unknown_fields(tmp_path):
    import shutil

    kb_dir = tmp_path / "kb"
    shutil.copytree(FIXTURES / "_base", kb_dir)
    path = kb_dir / "scripts" / "all.yaml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + "\n- id: s_extra\n  title: a\n  title: b\n  category: usage\n  keyword: [x]\n",
        encoding="utf-8",
    )
    _, problems = collect(kb_dir)
    messages = [str(p) for p in problems]
    assert any("duplicate key 'title'" in m for m in messages), messages
    assert any("unknown field 'keyword'" in m for m in messages), messages
    assert any("missing field 'keywords'" in m for m in messages), messages


def test_missing_category_is_an_error(tmp_path):
    import shutil

    kb_dir = tmp_path / "kb"
    shutil.copytree(FIXTURES / "_base", kb_dir)
    path = kb_dir / "categories.yaml"
    text = path.read_text(encoding="utf-8").replace("code: invoice", "code: invoices")
    path.write_text(text, encoding="utf-8")
    _, problems = collect(kb_dir)
    assert any("unknown category code 'invoices'" in p.message for p in problems)
    assert any("category 'invoice' is missing" in p.message for p in problems)


def test_kb_check_function_exit_codes(capsys):
    assert kb_cli(["kb", "check", "--path", str(SHIPPED)]) == 0
    assert capsys.readouterr().out.startswith("OK: ")
    for case in BROKEN:
        assert kb_cli(["kb", "check", "--path", str(FIXTURES / case)]) == 1, case
        out = capsys.readouterr().out
        assert f"{FIXTURES / case}" in out


def run_cli(*args: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT, capture_output=True, text=True, encoding="utf-8", input=stdin,
        env={**os.environ, **(env or {})}, timeout=120,
    )


def test_kb_check_process_exit_codes():
    ok = run_cli("kb", "check")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK: ")
    broken = run_cli("kb", "check", "--path", str(FIXTURES / "jinja_syntax"))
    assert broken.returncode == 1
    rel_file, marker, _ = BROKEN["jinja_syntax"]
    path = FIXTURES / "jinja_syntax" / rel_file
    assert f"{path}:{line_of(path, marker)}: " in broken.stdout


def test_kefu_kb_dir_overrides_default(monkeypatch):
    monkeypatch.setenv("KEFU_KB_DIR", str(FIXTURES / "_base"))
    assert default_kb_dir() == FIXTURES / "_base"
    assert len(load_kb()) == 16
    monkeypatch.delenv("KEFU_KB_DIR")
    assert default_kb_dir() == SHIPPED
    result = run_cli("kb", "check", env={"KEFU_KB_DIR": str(FIXTURES / "bad_flow_ref")})
    assert result.returncode == 1


def test_reload_builds_a_new_object_and_keeps_old_on_error(tmp_path):
    import shutil

    kb_dir = tmp_path / "kb"
    shutil.copytree(FIXTURES / "_base", kb_dir)
    first = load_kb(kb_dir)
    (kb_dir / "scripts" / "all.yaml").write_text("- id: [oops\n", encoding="utf-8")
    with pytest.raises(KbError):
        load_kb(kb_dir)
    assert len(first) == 16  # the caller keeps serving the old one
    assert first.get("s_usage") is not None
