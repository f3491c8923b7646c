"""Filling scripts: known variables filled, missing ones shown as 【…】 slots, never an exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.kb import Script, load_kb, render_script

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def kb():
    return load_kb(ROOT / "scripts_kb")


def make_script(body: str, variables: dict[str, str] | None = None) -> Script:
    return Script(
        id="t_script", title="t", category="usage", keywords=("t",), phrasings=("t",),
        body=body, variables=variables or {}, note="n", error_marker="[[broken]]",
    )


def test_known_variables_and_policy_are_filled(kb):
    text = kb.render("ret_return_address", {"order_no": "3561234567890123"})
    assert "3561234567890123" in text
    assert kb.policy["return_address"] in text
    assert f"{kb.policy['refund_days_after_receipt']}天内" in text
    assert "{{" not in text and "【" not in text


def test_missing_variables_show_their_description_as_a_slot(kb):
    text = kb.render("log_slow", {"carrier": "中通"})
    assert "中通" in text
    assert "【快递单号】" in text  # tracking_no's description
    empty = kb.render("log_slow", {"carrier": "", "tracking_no": None})
    assert "【快递公司】" in empty and "【快递单号】" in empty


def test_policy_switches_change_the_text(kb):
    script = kb.get("rf_freight_insurance")
    with_insurance = render_script(script, {}, {**kb.policy, "freight_insurance": True})
    without = render_script(script, {}, {**kb.policy, "freight_insurance": False})
    assert with_insurance != without
    assert "本店为订单赠送了运费险" in with_insurance and "赠送" not in without
    assert "订单详情里能看到有没有运费险" in without  # per order, never a fact from a shop-wide flag


def test_unknown_names_render_as_slots_not_blanks():
    script = make_script("亲，单号{{ tracking_no }}，{{ policy.nowhere }}。", {"tracking_no": "快递单号"})
    assert render_script(script, {}, {}) == "亲，单号【快递单号】，【nowhere】。"


def test_broken_template_never_raises():
    broken = make_script("亲{% if %}坏了")
    text = render_script(broken, {}, {})
    assert text.startswith("[[broken]]") and "亲{% if %}坏了" in text
    failing = make_script("金额{{ amount + 1 }}", {"amount": "金额"})
    assert render_script(failing, {}, {}).startswith("[[broken]]")
    assert render_script(failing, {"amount": 5}, {}) == "金额6"


def test_sandbox_blocks_unsafe_attribute_access():
    script = make_script("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    assert render_script(script, {}, {}).startswith("[[broken]]")


def test_output_is_plain_text_not_escaped():
    script = make_script("亲，{{ item_title }}", {"item_title": "商品"})
    assert render_script(script, {"item_title": "<b>A&B</b>"}, {}) == "亲，<b>A&B</b>"


def test_every_shipped_script_renders_with_and_without_values(kb):
    from bot.kb import ORDER_VARIABLES

    sample = {name: f"v_{name}" for name in ORDER_VARIABLES}
    for script in kb.scripts:
        bare = kb.render(script)
        assert not bare.startswith(kb.texts["render_error"]), script.id
        if "{% if" not in script.body:  # conditional parts may hide a slot on purpose
            for name, description in script.variables.items():
                assert f"【{description}】" in bare, (script.id, name)
        filled = kb.render(script, {**sample, **{n: f"v_{n}" for n in script.variables}})
        assert "【" not in filled or "【" in script.body, script.id
        assert len(filled) <= 4096


def test_a_shop_changes_its_policy_not_its_scripts(tmp_path):
    """Editing policy.yaml changes every script body, flow question and note that uses it."""
    import shutil

    kb_dir = tmp_path / "kb"
    shutil.copytree(ROOT / "scripts_kb", kb_dir)
    policy = kb_dir / "policy.yaml"
    text = policy.read_text(encoding="utf-8")
    text = text.replace("return_days: 7 ", "return_days: 15 ")
    text = text.replace("quality_return_needs_supervisor: true", "quality_return_needs_supervisor: false")
    policy.write_text(text, encoding="utf-8")
    shop = load_kb(kb_dir)
    assert shop.policy["return_days"] == 15
    assert "15天无理由退货" in shop.render("ret_7day_rules")
    labels = [c.label for f in shop.flows for n in f.nodes.values() for c in n.choices]
    assert "15天内" in labels
    assert "需主管同意" not in shop.get("qa_within_window").note
    assert "需主管同意" in load_kb(ROOT / "scripts_kb").get("qa_within_window").note
