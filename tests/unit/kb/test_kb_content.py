"""The rules the shipped scripts must keep (a shop editing them gets a failing test, not a fine)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.kb import load_kb

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def kb():
    return load_kb(ROOT / "scripts_kb")


#: Answers to questions (which courier, who pays freight, a discount?) promise no action, so no time.
INFORMATIONAL = {
    "cmp_review_reward_ask", "log_carrier_choice", "pp_bargain", "rf_shipping_fee_who", "rf_freight_insurance",
    "cmp_invite_review", "log_confirm_receipt", "miss_split_parcel", "miss_resend_tracking", "rf_scam_warning",
    "ret_intact_detail", "ret_gift_return",
}


def test_tone_and_concrete_time(kb):
    """亲-tone everywhere; every script that promises action says by when."""
    for script in kb.scripts:
        body = kb.render(script)
        assert "亲" in body, script.id
        exempt = script.category in ("payment_reminder", "usage", "health_safety") or script.id in INFORMATIONAL
        dated = any(name.endswith("_date") for name in script.variables)
        if not exempt and not dated:
            assert re.search(r"小时|天内|今天|工作日|\d天", script.body), script.id


def test_health_and_safety_always_escalate(kb):
    assert kb.category("health_safety").escalate
    for script in kb.scripts_in("health_safety"):
        body = kb.render(script)
        assert "主管" in script.note and "值班主管" in body, script.id
        assert "不做" in script.note  # no medical or liability judgement by the agent
        # the supervisor on duty is paged now: never "24 小时内联系" for a safety case
        assert "马上" in body or "尽快" in body or "紧急" in body, script.id
        assert "policy.reply_promise_hours" not in script.body and "24小时" not in body, script.id


def test_no_judging_from_photos_alone(kb):
    notes = " ".join(kb.get(i).note for i in ("qa_ask_evidence", "qa_within_window", "ret_not_intact", "dmg_arrived_broken"))
    assert notes.count("照片") >= 4


def test_quality_path_inside_and_outside_the_window(kb):
    inside, outside = kb.get("qa_within_window"), kb.get("qa_outside_window")
    assert "policy.quality_return_days" in inside.body and "来回运费由我们承担" in kb.render(inside)
    assert "需主管同意" in inside.note
    # past the shop's own window the law still gives repair/replacement; the cap stays internal
    assert "维修或更换" in kb.render(outside) and "来回运费由我们承担" in kb.render(outside)
    assert "compensation_cap" not in outside.body and f"{kb.policy['compensation_cap']}元" in outside.note


def test_one_polite_payment_reminder_and_48h_apology(kb):
    for script in kb.scripts_in("payment_reminder"):
        assert "只" in script.note or "一次" in script.note or "不能" in script.note, script.id
    once = kb.get("pay_remind_once")
    assert "只催付一次" in once.note
    apology = kb.get("ship_overdue_apology")
    assert "policy.ship_promise_hours" in apology.body and "抱歉" in apology.body


def test_return_shipping_rules(kb):
    fee = kb.render("rf_shipping_fee_who")
    assert "质量问题" in fee and "7天无理由" in fee
    assert "来回运费由我们承担" in fee
    rules = kb.render("ret_7day_rules")
    assert "吊牌" in rules and "配件" in rules and "第二天" in rules and "拆开检查" in rules
    assert "外包装完整" not in rules and "使用痕迹" not in rules
    excluded = kb.render("ret_excluded_goods")
    assert all(w in excluded for w in ("定制", "鲜活易腐", "数字商品"))


def test_reviews_are_never_paid_for(kb):
    for script in kb.scripts_in("complaint") + kb.scripts_in("price_promo"):
        body = kb.render(script)
        for phrase in kb.forbidden:
            assert phrase not in body, (script.id, phrase)
    assert "不会用任何奖励来换评价" in kb.render("cmp_review_reward_ask")
