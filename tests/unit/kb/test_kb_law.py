"""Issue 15: the shipped scripts state the law right and cover a 售后 team's whole day.

For every fix and every new situation: a realistic query finds the script, and the rendered text
no longer carries the claim that would expose a shop to a penalty. All through the real loader,
search and renderer on the shipped scripts_kb/.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bot.kb import collect, load_kb, render_script

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "scripts_kb"


@pytest.fixture(scope="module")
def kb():
    return load_kb(SHIPPED)


def top_ids(kb, query: str, top: int = 3) -> list[str]:
    return [h.script.id for h in kb.search(query, top=top)]


def render(kb, script_id: str, values: dict | None = None, **policy) -> str:
    return render_script(kb.get(script_id), values or {}, {**kb.policy, **policy})


def all_bodies(kb, **policy) -> dict[str, str]:
    return {s.id: render(kb, s.id, **policy) for s in kb.scripts}


# -- a query finds each fixed or new script ---------------------------------------------------

FINDS = [
    # fixes 1-10
    ("买了两个月拉链坏了 过了你们的退换期还能修吗", "qa_outside_window"),
    ("包装拆了还能七天无理由退吗", "ret_intact_detail"),
    ("吊牌剪掉了还能退吗", "ret_not_intact"),
    ("退货的话赠品已经用掉了怎么办", "ret_gift_return"),
    ("运费险怎么理赔", "rf_freight_insurance"),
    ("耳机用了三天一边没声音", "qa_device_fault"),
    ("你们发错尺码了 我要的是L", "wrong_color_size"),
    ("只来了一个包裹 另一个呢", "miss_split_parcel"),
    ("好评返红包吗", "cmp_review_reward_ask"),
    ("晒图有返现吗", "cmp_review_reward_ask"),
    ("刚买就降价了能补差价吗", "pp_price_protect"),
    ("能再便宜点吗", "pp_bargain"),
    ("已经发货了不想要了 能拦截吗", "addr_intercept"),
    ("外箱破了我要不要签收", "dmg_refuse_damaged_box"),
    ("地址写错了帮我改一下", "addr_before_ship"),
    ("退款到银行卡要多久", "rf_when"),
    ("发票抬头开错了能重开吗", "inv_wrong_title"),
    ("专票需要提供什么资料", "inv_special"),
    ("插上电就冒烟了", "hs_device_hazard"),
    ("孩子把玩具上的小零件吞下去了", "hs_child_swallow"),
    ("收到的牛奶已经过期了", "hs_spoiled_expired"),
    ("你们卖的是不是假货", "qa_authenticity"),
    ("连不上手机是不是我设置错了", "use_troubleshoot"),
    ("拍了多久能发货", "ship_when"),
    # new situations
    ("东西收到了能不能只退款不寄回", "rf_refund_only_received"),
    ("快递我拒收了 钱什么时候退", "rf_refused_delivery"),
    ("仓库说我退回的东西检验不通过", "rf_inspection_failed"),
    ("小二介入了让我上传凭证", "cmp_platform_dispute"),
    ("申请换货以后怎么操作", "ret_exchange_process"),
    ("寄回去一个星期了换的货还没发", "ret_exchange_late"),
    ("补发的快递单号是多少", "miss_resend_tracking"),
    ("补发的到了原来那个也送到了", "miss_original_arrived"),
    ("发货超时了赔我多少", "ship_late_compensation"),
    ("单号查不到任何信息是不是假发货", "log_no_movement"),
    ("定金付了不想要了能退吗", "ship_presale_deposit"),
    ("预售时间都过了怎么还不发", "ship_presale_late"),
    ("刻字的杯子能退吗", "ret_custom_goods"),
    ("生鲜坏了怎么办", "qa_fresh_spoiled"),
    ("跨店满减的订单退一件退多少", "rf_partial_discount"),
    ("能加个微信吗方便联系", "pay_offline_refused"),
    ("有人打电话说是你们客服要给我退款让我下载软件", "rf_scam_warning"),
    ("不给我五百块就写差评", "cmp_malicious_review"),
    ("你们页面用了最字违反广告法要赔我", "cmp_pro_claimant"),
    ("你们是假货我要假一赔三", "cmp_fake_compensation_claim"),
    ("问题解决了想请买家评价", "cmp_invite_review"),
    ("还没收到货要我先点确认收货吗", "log_confirm_receipt"),
    ("显示驿站签收了但驿站说没有", "nr_station_not_found"),
    ("家里人门卫驿站我都问过了都没有", "nr_signed_checked"),
    ("保质期只剩一个月了", "ret_near_expiry"),
    ("用的时候被边缘划伤了手", "hs_injury"),
    ("在吗", "greet_hello"),
    ("有人吗", "greet_hello"),
]


@pytest.mark.parametrize(("query", "script_id"), FINDS)
def test_a_buyer_message_finds_the_script(kb, query, script_id):
    assert script_id in top_ids(kb, query), (query, top_ids(kb, query))


def test_generic_fresh_food_complaint_is_not_the_electronics_fault_script(kb):
    assert top_ids(kb, "生鲜坏了", top=1) == ["qa_fresh_spoiled"]
    assert "qa_device_fault" not in top_ids(kb, "水果烂了好几个")


def test_review_reward_questions_rank_the_refusal_not_the_rebate_first(kb):
    for query in ("好评返红包吗", "晒图返现吗", "带图评价有红包吗", "五星好评送什么"):
        assert top_ids(kb, query, top=1) == ["cmp_review_reward_ask"], query


def test_unshipped_refund_script_no_longer_answers_a_received_order(kb):
    assert top_ids(kb, "已经收到货了想申请仅退款", top=1) == ["rf_refund_only_received"]
    assert "今天内为您同意" not in render(kb, "rf_refund_unshipped")


def test_near_expiry_is_not_a_safety_case(kb):
    hits = kb.search("临期商品能退吗", top=1)
    assert hits[0].script.category == "return_exchange"
    assert "临期" not in kb.get("hs_spoiled_expired").keywords


# -- 1. past the shop's window: repair/replacement, never the cap ----------------------------


def test_after_the_shop_window_repair_or_replacement_and_no_refusal(kb):
    text = render(kb, "qa_outside_window")
    assert "没办法再办理退换" not in text and "修补店" not in text
    assert "维修或更换" in text and "来回运费由我们承担" in text
    assert "由您决定" in text  # compensation only as the buyer's choice
    note = kb.get("qa_outside_window").note
    assert "消法第24条" in note and "第23条第3款" in note and "6个月" in note
    over = kb.get("ret_over_window")
    assert "小额补偿" not in over.note and "不受这个时间限制" in render(kb, "ret_over_window")


def test_the_compensation_cap_never_reaches_a_buyer(kb):
    for script_id, text in all_bodies(kb, compensation_cap=9876).items():
        assert "9876" not in text, script_id
    assert "9876" not in "".join(kb.get(s.id).body for s in kb.scripts)


def test_the_after_window_flow_branch_offers_repair(kb):
    received = kb.flow("received")
    outcomes = {n.id: n for n in received.nodes.values() if n.is_outcome}
    assert "qa_outside_window" in outcomes["out_q_outside"].send
    assert any("修理或更换" in item for item in outcomes["out_q_outside"].checklist)


# -- 2. 完好 as broad as the law; 赠品 returned or paid ----------------------------------------


def test_intact_conditions_are_not_narrower_than_the_law(kb):
    for script_id, text in all_bodies(kb).items():
        for claim in ("外包装完整", "没有任何使用痕迹", "没有洗涤、穿着或使用痕迹", "不影响二次销售"):
            assert claim not in text, (script_id, claim)
    assert "试穿试用" in render(kb, "ret_not_intact") and "试穿试用" in render(kb, "ret_intact_detail")
    gift = render(kb, "ret_gift_return")
    assert "也可以退货" in gift and "赠品的价格" in gift
    assert "第12条" in kb.get("ret_gift_return").note  # 暂行办法第12条: 赠品 (第10条 is the 7-day notice)


def test_the_flow_no_longer_treats_use_as_not_intact(kb):
    tags = kb.flow("received").node("nr_tags")
    labels = [c.label for c in tags.choices]
    assert not any("已使用" in label for label in labels)
    assert any("试穿" in label for label in labels)


# -- 3. 运费险 per order; never promised for exchanges ----------------------------------------


def test_freight_insurance_is_not_stated_as_a_fact_of_the_order(kb):
    for flag in (False, True):
        for script_id, text in all_bodies(kb, freight_insurance=flag).items():
            assert "您的订单有运费险" not in text and "订单有运费险" not in text, (script_id, flag)
    assert "如果订单带运费险" in render(kb, "ret_7day_rules", freight_insurance=False)
    assert "以订单页显示为准" in render(kb, "ret_7day_rules", freight_insurance=True)


def test_exchanges_never_promise_freight_insurance(kb):
    for script_id in ("ret_size_exchange", "ret_wrong_spec_shipped", "ret_exchange_process"):
        for flag in (False, True):
            assert "运费险" not in render(kb, script_id, freight_insurance=flag), script_id
        assert "换货" in kb.get(script_id).note and "运费险" in kb.get(script_id).note


# -- 4, 5. quality: 7-day choice, 三包 scope, nothing admitted or promised before checking ----


def test_device_fault_within_seven_days_offers_return_too(kb):
    text = render(kb, "qa_device_fault")
    assert "7天内" in text and "退货、换货或维修" in text
    assert "三包" in kb.get("qa_device_fault").note and "目录" in kb.get("qa_device_fault").note


def test_no_fault_admitted_and_no_approval_promised_before_checking(kb):
    bodies = all_bodies(kb)
    for script_id, text in bodies.items():
        for claim in ("是我们仓库的失误", "不是漏发", "出库检查没做好", "这是我们的问题"):
            assert claim not in text, (script_id, claim)
    within = render(kb, "qa_within_window", quality_return_needs_supervisor=True)
    assert "核实" in within and "需要主管确认" in within
    assert "需要主管确认" not in render(kb, "qa_within_window", quality_return_needs_supervisor=False)


# -- 6. the other parcel has its own slots ----------------------------------------------------


def test_split_parcel_never_shows_the_buyers_own_tracking_number(kb):
    script = kb.get("miss_split_parcel")
    assert "tracking_no" not in script.variables and "other_tracking_no" in script.variables
    text = render(kb, "miss_split_parcel", {"tracking_no": "YT0001", "carrier": "圆通"})
    assert "YT0001" not in text and "【另一个包裹的快递单号" in text
    assert "SF999" in render(kb, "miss_split_parcel", {"other_tracking_no": "SF999", "other_carrier": "顺丰"})


# -- 7. reviews ------------------------------------------------------------------------------


def test_no_script_asks_for_a_changed_or_added_review(kb):
    for script_id, text in all_bodies(kb).items():
        for ask in ("更新评价", "修改评价", "追加评价", "改评价", "删除差评", "删评", "好评"):
            if script_id == "cmp_review_reward_ask" and ask == "好评":
                continue
            assert ask not in text, (script_id, ask)
    assert "评价" not in render(kb, "cmp_threat_bad_review")  # first reply: solve, don't raise reviews


def test_forbidden_list_has_the_corrections_phrases(kb):
    for phrase in ("评价返现", "晒图返红包", "好评后返", "带图好评返", "删除差评", "撤销投诉", "撤诉",
                   "加微信", "加V", "线下转账", "先确认收货", "更新评价", "谢谢您这么细心"):
        assert phrase in kb.forbidden, phrase


@pytest.mark.parametrize("phrase", ["麻烦您更新评价哦", "加 微 信 发您红包", "先确认收货再退款", "问题解决后请撤销投诉"])
def test_kb_check_rejects_a_body_with_a_forbidden_phrase(tmp_path, phrase):
    kb_dir = tmp_path / "kb"
    shutil.copytree(SHIPPED, kb_dir)
    path = kb_dir / "scripts" / "complaint.yaml"
    text = path.read_text(encoding="utf-8")
    old = "请把遇到的问题和照片发我"
    path.write_text(text.replace(old, f"{phrase}，{old}", 1), encoding="utf-8")
    kb2, problems = collect(kb_dir)
    assert kb2 is None and any("forbidden phrase" in p.message and "cmp_threat_bad_review" in p.message for p in problems)


def test_synonyms_no_longer_send_review_rewards_to_the_rebate_script(kb):
    assert not any(variant.startswith("好评返") and canonical == "返现" for variant, canonical, _ in kb.rewrites.expansions)


# -- 8. 价保 and shop coupons are shop options -----------------------------------------------


def test_price_protection_only_when_the_shop_offers_it(kb):
    off = render(kb, "pp_price_protect", price_protect=False)
    on = render(kb, "pp_price_protect", price_protect=True, price_protect_days=15)
    assert "没有开通价保" in off and "补差价" in off and "本店支持" not in off
    assert "15天内价保" in on
    assert "领店铺优惠券" not in render(kb, "pp_bargain", shop_coupon=False)
    assert "领店铺优惠券" in render(kb, "pp_bargain", shop_coupon=True)
    assert kb.policy["price_protect"] is False and kb.policy["shop_coupon"] is False


# -- 9. 拒收 needs a refund application; address changes through the platform ----------------


def test_refusing_delivery_is_not_a_refund(kb):
    for script_id in ("addr_intercept", "dmg_refuse_damaged_box", "rf_refused_delivery"):
        text = render(kb, script_id)
        assert "申请退款" in text and "不会自动退款" in text, script_id
        assert "效果是一样的" not in text


def test_address_changes_go_through_the_platform(kb):
    before = kb.get("addr_before_ship")
    text = render(kb, "addr_before_ship")
    assert "修改地址" in text and "new_address" not in before.variables and "回复“确认”" not in text
    assert "诈骗" in before.note
    spec = render(kb, "addr_change_spec")
    assert "不会耽误发货" not in spec and "已经给您加上" not in spec and "核实" in spec
    checklist = kb.flow("unshipped").node("out_addr_before").checklist
    assert any("修改地址" in item for item in checklist) and not any("已改地址" in item for item in checklist)


# -- 10. refund timing, invoices, health and safety, documents, factory reset, PDD ------------


def test_card_refunds_are_up_to_the_bank(kb):
    text = render(kb, "rf_when")
    assert "1-3个工作日" not in text and "以银行到账为准" in text


def test_invoices_follow_the_digital_invoice_rules(kb):
    assert "红包" in kb.get("inv_how").note and "都要开票" in kb.get("inv_how").note
    wrong = render(kb, "inv_wrong_title")
    assert "红冲" in wrong and "作废" not in wrong
    special = render(kb, "inv_special", special_invoice=True)
    assert "单位名称和税号" in special and "不是必填" in special


def test_health_cases_page_the_supervisor_now(kb):
    for script in kb.scripts_in("health_safety"):
        text = render(kb, script.id)
        assert "小时内" not in text, script.id
        assert "值班主管" in text, script.id
        assert "立即" in script.note, script.id
    swallow = render(kb, "hs_child_swallow")
    assert "120" in swallow and "医院" in swallow
    assert "食品安全法第148条" in kb.get("hs_spoiled_expired").note


def test_health_flow_branches_by_type(kb):
    node = kb.flow("received").node("hs_kind")
    sent = {kb.flow("received").node(c.next).send[0] for c in node.choices}
    assert {"hs_device_hazard", "hs_child_swallow", "hs_allergy", "hs_injury", "hs_foreign_object",
            "hs_spoiled_expired"} <= sent


def test_authenticity_promises_no_documents(kb):
    text = render(kb, "qa_authenticity")
    assert "进货凭证" not in text and "品牌授权" not in text


def test_factory_reset_warns_of_data_loss(kb):
    text = render(kb, "use_troubleshoot")
    assert "恢复出厂设置会清除" in text and "备份" in text


def test_pdd_shipping_counts_from_group_formed(kb):
    assert "拼单成功" in render(kb, "ship_when")
    assert "拼单成功" in kb.flow("unshipped").node("overdue").ask


# -- flows ------------------------------------------------------------------------------------


def test_the_scripts_the_issue_found_unreachable_are_sent_by_a_branch(kb):
    sent = {sid for flow in kb.flows for node in flow.nodes.values() for sid in node.send}
    for script_id in ("qa_not_as_described", "qa_device_fault", "qa_authenticity", "dmg_stain", "dmg_leak",
                      "miss_short_weight", "wrong_model", "wrong_extra_item", "ret_wrong_spec_shipped"):
        assert script_id in sent, script_id


def test_already_sent_photos_branches_do_not_ask_for_photos_again(kb):
    found = 0
    for flow in kb.flows:
        for node in flow.nodes.values():
            if node.is_outcome or "照片" not in node.ask:
                continue
            for choice in node.choices:
                if choice.label.startswith("已经发过"):
                    found += 1
                    outcome = flow.node(choice.next)
                    for script_id in outcome.send:
                        text = render(kb, script_id)
                        assert not re.search(r"拍(一下|几张|张|照)|照片发我|发一下.*照片", text), (node.id, script_id)
    assert found >= 4  # quality (inside and outside the window), damage, wrong item


def test_signed_but_not_received_paths(kb):
    flow = kb.flow("not_received")
    sent = {sid for node in flow.nodes.values() for sid in node.send}
    for script_id in ("nr_empty_parcel", "nr_signed_by_other", "nr_station_not_found", "log_no_movement",
                      "rf_refused_delivery", "nr_signed_checked"):
        assert script_id in sent, script_id


def test_no_flow_question_has_two_choices_sending_the_same_scripts(kb):
    for flow in kb.flows:
        for node in flow.nodes.values():
            outcomes = [frozenset(flow.node(c.next).send) for c in node.choices if flow.node(c.next).is_outcome]
            assert len(outcomes) == len(set(outcomes)), (flow.id, node.id)


# -- policy, tone, legal basis ----------------------------------------------------------------


def test_address_form_per_platform_in_every_script(kb):
    for script in kb.scripts:
        douyin = render(kb, script.id, {"platform": "douyin"})
        jd = render(kb, script.id, {"platform": "jd"})
        assert douyin.startswith("宝") or "，宝。" in douyin, script.id
        assert "您好" in jd, script.id


def test_tone_short_bodies_few_softeners_no_sarcasm_prone_phrases(kb):
    for script_id, text in all_bodies(kb).items():
        assert len(text) <= 300, (script_id, len(text))
        assert len(re.findall(r"[呢哦呀啦哈]~", text)) <= 1, script_id
        assert "谢谢您这么细心" not in text and "您真是太好了" not in text, script_id


#: Scripts that only inform or greet and make no statement about rights or duties.
NO_LEGAL_STATEMENT = {
    "greet_hello", "greet_thanks", "use_install", "use_manual", "use_troubleshoot", "use_size_guide", "use_care",
    "pay_remind_once", "pay_remind_problem", "pay_remind_address", "pay_remind_closing", "log_slow",
    "log_urge_courier", "log_station", "log_carrier_choice", "log_returned_abnormal", "cmp_bad_attitude",
    "inv_progress", "pp_coupon_missed", "pp_gift_missing", "pp_bargain", "qa_ask_evidence", "qa_photos_received",
    "miss_split_parcel", "miss_resend_tracking", "miss_original_arrived", "wrong_extra_item", "addr_change_spec",
}


def test_each_legal_statement_names_its_basis(kb):
    for script in kb.scripts:
        if script.id in NO_LEGAL_STATEMENT:
            continue
        assert "依据：" in script.note, script.id
        basis = script.note.split("依据：", 1)[1]
        assert re.search(r"法第|法典第|办法|规定|条例|规则|规范|公告|条款", basis), script.id
