"""Whole-knowledge-base checks: unreachable scripts, pointless flow questions, policy example
values and the per-platform form of address, through the real loader and `kefu kb check`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.cli import main as kefu_cli
from bot.kb import collect, example_values, load_kb, policy_warnings

ROOT = Path(__file__).resolve().parents[3]
BASE = ROOT / "tests" / "fixtures" / "kb_broken" / "_base"
SHIPPED = ROOT / "scripts_kb"


@pytest.fixture
def kb_dir(tmp_path) -> Path:
    target = tmp_path / "kb"
    shutil.copytree(BASE, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def messages(kb_dir: Path) -> list[str]:
    kb, problems = collect(kb_dir)
    assert kb is None, "expected problems"
    return [str(p) for p in problems]


def line_of(path: Path, marker: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if marker in line)


# -- reachability --------------------------------------------------------------------------------


def test_a_script_no_flow_sends_is_an_error_with_its_file_and_line(kb_dir):
    scripts = kb_dir / "scripts" / "all.yaml"
    # s_damaged was search-only; now it claims to need a flow branch
    edit(scripts, "category: damaged\n  search_only: true\n", "category: damaged\n")
    found = messages(kb_dir)
    assert found == [f"{scripts}:{line_of(scripts, '- id: s_damaged')}: script 's_damaged' is not sent by any "
                     "flow branch (add it to a flow outcome, or mark it search_only: true)"]


def test_a_flow_branch_that_sends_it_makes_it_reachable(kb_dir):
    edit(kb_dir / "scripts" / "all.yaml", "category: damaged\n  search_only: true\n", "category: damaged\n")
    edit(kb_dir / "flows" / "mini.yaml", "send: [s_quality_issue]", "send: [s_quality_issue, s_damaged]")
    kb, problems = collect(kb_dir)
    assert problems == [] and kb is not None
    assert kb.get("s_damaged").search_only is False and kb.get("s_usage").search_only is True


def test_search_only_must_be_a_boolean(kb_dir):
    edit(kb_dir / "scripts" / "all.yaml", "category: damaged\n  search_only: true\n", "category: damaged\n  search_only: 是\n")
    assert any("search_only must be true or false" in m for m in messages(kb_dir))


def test_every_shipped_script_is_reachable_or_marked_search_only():
    kb = load_kb(SHIPPED)
    sent = {sid for flow in kb.flows for node in flow.nodes.values() for sid in node.send}
    assert all(s.id in sent or s.search_only for s in kb.scripts)


# -- flow questions whose choices all end the same way -------------------------------------------


def test_a_question_whose_choices_send_the_same_scripts_is_an_error(kb_dir):
    flow = kb_dir / "flows" / "mini.yaml"
    edit(flow, "send: [s_quality_issue]", "send: [s_return_exchange]")
    found = messages(kb_dir)
    assert len(found) == 1, found  # reachability waits until the flows themselves are sound
    assert f"{flow}:{line_of(flow, '  q:')}: flow node 'q': every choice leads to the same result (s_return_exchange)" in found[0]


def test_the_same_scripts_in_another_order_are_the_same_result(kb_dir):
    flow = kb_dir / "flows" / "mini.yaml"
    edit(flow, "send: [s_return_exchange]", "send: [s_return_exchange, s_quality_issue]")
    edit(flow, "send: [s_quality_issue]", "send: [s_quality_issue, s_return_exchange]")
    assert any("flow node 'q': every choice leads to the same result" in m for m in messages(kb_dir))


def test_a_nested_question_that_collapses_counts_as_its_result(kb_dir):
    """q → (done | inner); inner's two choices both send s_return_exchange: both questions are pointless."""
    flow = kb_dir / "flows" / "mini.yaml"
    edit(flow, "next: done2}", "next: inner}")
    edit(flow, "  done2:\n    send: [s_quality_issue]\n    checklist: [需主管同意]\n",
         "  inner:\n    ask: 有照片吗？\n    choices:\n      - {label: 有, next: done}\n      - {label: 没有, next: done3}\n"
         "  done3:\n    send: [s_return_exchange]\n    checklist: [先要照片]\n")
    edit(kb_dir / "scripts" / "all.yaml", "category: quality_issue\n", "category: quality_issue\n  search_only: true\n")
    found = messages(kb_dir)
    assert any("flow node 'inner': every choice leads to the same result" in m for m in found), found
    assert any("flow node 'q': every choice leads to the same result" in m for m in found), found


def test_choices_that_differ_somewhere_below_are_fine(kb_dir):
    flow = kb_dir / "flows" / "mini.yaml"
    edit(flow, "next: done2}", "next: inner}")
    edit(flow, "  done2:\n", "  inner:\n    ask: 有照片吗？\n    choices:\n      - {label: 有, next: done}\n"
         "      - {label: 没有, next: done2}\n  done2:\n")
    kb, problems = collect(kb_dir)
    assert problems == [] and kb is not None


# -- policy: example values and the form of address ----------------------------------------------


def test_example_values_are_a_warning_not_an_error(kb_dir, capsys):
    policy = kb_dir / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8") + "return_phone: 400-000-0000\nexample_values: [return_phone]\n",
                      encoding="utf-8")
    kb = load_kb(kb_dir)
    assert example_values(kb.policy) == [("return_phone", "400-000-0000")]
    warnings = policy_warnings(kb_dir, kb.policy)
    assert [(w.file, w.line) for w in warnings] == [(str(policy), line_of(policy, "return_phone:"))]
    assert kefu_cli(["kb", "check", "--path", str(kb_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: ") and "1 warning(s)" in out
    assert f"{policy}:{line_of(policy, 'return_phone:')}: warning: return_phone is still the shipped example" in out
    # the shop fills in its number and empties the list: no warning any more
    edit(policy, "example_values: [return_phone]", "example_values: []")
    assert example_values(load_kb(kb_dir).policy) == []
    assert kefu_cli(["kb", "check", "--path", str(kb_dir)]) == 0
    assert "warning" not in capsys.readouterr().out


def test_example_values_must_name_policy_values(kb_dir):
    policy = kb_dir / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8") + "example_values: [return_fone]\n", encoding="utf-8")
    assert messages(kb_dir) == [f"{policy}:{line_of(policy, 'example_values')}: policy example_values: 'return_fone' is not a policy name"]


def test_shipped_policy_marks_its_examples():
    kb = load_kb(SHIPPED)
    names = {name for name, _ in example_values(kb.policy)}
    assert {"return_address", "return_phone", "return_receiver"} <= names
    for option in ("price_protect", "freight_insurance", "compensation_cap", "address_form"):
        assert option in kb.policy, option


def test_address_form_follows_the_order_platform(kb_dir):
    policy = kb_dir / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8")
                      + "address_form:\n  default: 亲\n  douyin: 宝\n  jd: 您好\n", encoding="utf-8")
    edit(kb_dir / "scripts" / "all.yaml", "亲，这是一条测试话术哦", "{{ qin }}，这是一条测试话术哦")
    kb = load_kb(kb_dir)
    assert kb.render("s_return_exchange", {"platform": "douyin"}).startswith("宝，")
    assert kb.render("s_return_exchange", {"platform": "jd"}).startswith("您好，")
    assert kb.render("s_return_exchange", {"platform": "taobao"}).startswith("亲，")
    assert kb.render("s_return_exchange").startswith("亲，")  # no order: the default


def test_address_form_needs_a_default_and_known_platforms(kb_dir):
    policy = kb_dir / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8") + "address_form:\n  douyin: 宝\n  weixin: 您\n", encoding="utf-8")
    found = messages(kb_dir)
    assert len(found) == 1 and "policy address_form" in found[0] and "weixin" in found[0], found
    assert found[0].startswith(f"{policy}:{line_of(policy, 'address_form')}: ")


def test_qin_without_an_address_form_is_an_error(kb_dir):
    edit(kb_dir / "scripts" / "all.yaml", "亲，这是一条测试话术哦", "{{ qin }}，这是一条测试话术哦")
    assert any("{{ qin }} needs policy.address_form" in m for m in messages(kb_dir))


def test_approval_options_are_checked_by_the_cases_rules(kb_dir):
    """`kefu kb check` reports a malformed 售后审批 option at its line, worded by bot.cases."""
    policy = kb_dir / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8") + "approval_remind_minutes: soon\n", encoding="utf-8")
    found = messages(kb_dir)
    assert found == [f"{policy}:{line_of(policy, 'approval_remind_minutes')}: policy approval_remind_minutes:"
                     " expected a whole number of minutes > 0, got 'soon'"], found


def test_approval_amounts_and_order_of_timings(kb_dir):
    policy = kb_dir / "policy.yaml"
    text = policy.read_text(encoding="utf-8")
    policy.write_text(text + "admin_approval_above: 12.345\n", encoding="utf-8")
    assert any("admin_approval_above" in m and "2 decimals" in m for m in messages(kb_dir))
    policy.write_text(text + "approval_remind_minutes: 90\napproval_escalate_minutes: 30\n", encoding="utf-8")
    assert any("approval_escalate_minutes must not be shorter" in m for m in messages(kb_dir))


def test_shipped_approval_options_are_valid():
    from bot.cases import ApprovalPolicy

    assert ApprovalPolicy.from_policy(load_kb(SHIPPED).policy).compensation_cap_cents == 2000
