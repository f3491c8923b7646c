from pathlib import Path

import pytest

from bot.kpi import StandardsError, load_standards
from bot.kpi.standards import METRICS


def test_shipped_defaults_cover_the_issue_and_say_why():
    standards = {s.id: s for s in load_standards()}
    assert standards["payment_claim_10m"].within_minutes == 10 and standards["payment_claim_10m"].target_percent == 90
    assert standards["warning_saved"].target_percent == 80
    assert standards["shipping_late_rate"].direction == "at_most" and standards["shipping_late_rate"].target_percent == 2
    assert standards["handover_takeover_30m"].target_percent == 95
    assert standards["handover_carry_over"].params == {"max_shifts": 2}
    assert standards["ack_15m"].within_minutes == 15 and standards["ack_urgent_5m"].within_minutes == 5
    assert standards["payment_success"].target_percent is None  # tracked; the shop sets the target
    assert all(s.why and s.metric in METRICS for s in standards.values())


def test_errors_name_file_and_line(tmp_path: Path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "standards:\n"
        "  - id: a\n"
        "    name: 甲\n"
        "    kind: within\n"
        "    metric: payment_claim\n"
        "    target_percent: 120\n"  # line 6
        "    why: 买家\n"
        "  - id: a\n"  # line 8: duplicate, no within_minutes
        "    name: 乙\n"
        "    kind: rate\n"
        "    metric: nonsense\n"  # line 11
        "    why: 买家\n",
        encoding="utf-8",
    )
    with pytest.raises(StandardsError) as info:
        load_standards(path)
    text = str(info.value)
    assert f"{path}:6: target_percent" in text
    assert f"{path}:8: id 'a' already used" in text
    assert f"{path}:11: unknown metric" in text
    assert f"{path}:4: within_minutes" in text or f"{path}:2: within_minutes" in text


def test_syntax_error_has_a_line(tmp_path: Path):
    path = tmp_path / "s.yaml"
    path.write_text("standards:\n  - id: [oops\n", encoding="utf-8")
    with pytest.raises(StandardsError) as info:
        load_standards(path)
    assert info.value.problems[0].line >= 2


def test_cli_check(tmp_path, capsys, monkeypatch):
    from bot.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEFU_STANDARDS_FILE", raising=False)
    assert main(["standards", "check"]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("standards: 3\n", encoding="utf-8")
    assert main(["standards", "check", str(bad)]) == 2
    assert f"{bad}:1:" in capsys.readouterr().err


def test_an_empty_setting_means_the_shipped_defaults_and_a_folder_is_an_error(tmp_path):
    assert load_standards(Path(".")) == load_standards()
    with pytest.raises(StandardsError) as info:
        load_standards(tmp_path)
    assert info.value.problems[0].line == 1
