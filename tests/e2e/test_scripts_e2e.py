"""Reply scripts end to end through the emulator: /s, pasted messages, the category menu, order
variables, copy buttons, related scripts, /aftersale, inline mode, /kb_reload and /kb_stats."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from bot.kb import load_kb, stats
from bot.people import Role
from tests.conftest import local
from tests.harness import start_kefu, stop_kefu

ROOT = Path(__file__).resolve().parents[2]
AGENT, SUPERVISOR, STRANGER = 3001, 3002, 3999
ORDER_NO = "4012345678901234567"

LONG_SCRIPT = """
- id: use_long_manual
  title: 长篇安装说明（测试用）
  category: usage
  search_only: true
  keywords: [超长说明书测试]
  phrasings:
    - 超长说明书测试怎么装
  body: |
    亲，安装步骤如下哦：
{steps}
  variables: {{}}
  note: |
    测试用的长话术。
"""


BROKEN_SCRIPT = """
- id: inv_broken
  title: <坏的>
  category: nope
  keywords: [坏]
  phrasings: [坏了]
  body: "亲，{{ oops "
  variables: {}
  note: 无
"""


def buttons(message: dict) -> list[dict]:
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def button_data(message: dict) -> list[str]:
    return [b["callback_data"] for b in buttons(message) if "callback_data" in b]


def copy_buttons(message: dict) -> list[dict]:
    return [b for b in buttons(message) if "copy_text" in b]


def pre_block(message: dict) -> str:
    """The text inside the message's <pre> block (what the agent copies)."""
    text = message["text"]
    start, end = text.index("<pre>") + len("<pre>"), text.index("</pre>")
    import html

    return html.unescape(text[start:end])


@pytest.fixture
def kb_copy(tmp_path) -> Path:
    """A private copy of the shipped knowledge base with one long script added."""
    target = tmp_path / "kb"
    shutil.copytree(ROOT / "scripts_kb", target)
    steps = "\n".join(f"    {i}. 把第{i}号零件对准卡槽，听到咔哒一声说明已经装好，再检查一下是否牢固，没问题再进行下一步哦。" for i in range(1, 9))
    with open(target / "scripts" / "usage.yaml", "a", encoding="utf-8") as handle:
        handle.write(LONG_SCRIPT.format(steps=steps))
    return target


class Bot:
    """The harness, with waits for the expected outcome instead of "the bot went quiet": a
    handler that reads the database before it answers can be quiet for a while on a busy machine."""

    def __init__(self, kefu) -> None:
        self.kefu = kefu
        self.emu, self.app, self.svc, self.clock = kefu.emu, kefu.app, kefu.svc, kefu.clock

    def last_id(self, chat: int) -> int:
        return max((m["message_id"] for m in self.emu.messages(chat)), default=0)

    async def _new_message(self, chat: int, seen: int) -> dict:
        await self.emu.wait_for_message(chat, lambda m: m["message_id"] > seen)
        await self.emu.wait_until_idle()
        return self.emu.last_message(chat)

    async def say(self, user: int, text: str) -> dict:
        """Send a message and return the bot's newest message once a new one has arrived."""
        seen = self.last_id(user)
        self.emu.send_text(user, text)
        return await self._new_message(user, seen)

    async def press_new(self, user: int, message: dict, data: str) -> dict:
        """Press a button that sends a new message (a script); return that message."""
        seen = self.last_id(user)
        await self.kefu.press(user, message, data=data)
        return await self._new_message(user, seen)

    async def press_edit(self, user: int, message: dict, data: str, expect: str) -> dict:
        """Press a button that edits its own message; return it once it shows `expect`."""
        await self.kefu.press(user, message, data=data)
        return await self.emu.wait_for_message(
            user, lambda m: m["message_id"] == message["message_id"] and expect in m["plain"]
        )

    async def press_answer(self, user: int, message: dict, data: str) -> dict:
        """Press a button and return the bot's answerCallbackQuery (text, show_alert)."""
        query = await self.kefu.press(user, message, data=data)
        await self.emu.wait_for_request("answerCallbackQuery", lambda e: e["params"].get("callback_query_id") == query)
        await self.emu.wait_until_idle()
        return self.emu.callback_answer(query)

    async def inline(self, user: int, text: str) -> dict:
        query = self.emu.inline_query(user, text)
        await self.emu.wait_for_request("answerInlineQuery", lambda e: str(e["params"].get("inline_query_id")) == query)
        return self.emu.inline_answer(query)


@pytest.fixture
async def bot(tmp_path, clock, kb_copy, monkeypatch):
    monkeypatch.chdir(tmp_path)
    running = await start_kefu(tmp_path, clock, kefu_kb_dir=kb_copy)
    await running.add_person(AGENT, Role.AGENT, name="小美")
    await running.add_person(SUPERVISOR, Role.SUPERVISOR, name="李主管")
    yield Bot(running)
    await stop_kefu(running)


async def insert_order(bot, order_no: str = ORDER_NO) -> None:
    from bot.orders import NormalizedOrder, upsert_orders

    order = NormalizedOrder(
        platform="taobao", order_no=order_no, shop="小铺旗舰店", status="shipped", status_raw="卖家已发货",
        refunding=False, presale=False, created_at=local("2026-11-20 09:00"), paid_at=local("2026-11-20 09:05"),
        shipped_at=local("2026-11-21 15:00"), amount=Decimal("129.00"), buyer="tb_buyer_01",
        item_title="加厚羊羔绒外套", tracking_no="YT8800123456789", carrier="圆通速递",
    )
    await upsert_orders(bot.svc.db, [order], clock=bot.clock)


async def reload(bot) -> dict:
    """/kb_reload as the supervisor; the result replaces the "checking" message when loading ends."""
    seen = bot.last_id(SUPERVISOR)
    bot.emu.send_text(SUPERVISOR, "/kb_reload")
    return await bot.emu.wait_for_message(
        SUPERVISOR, lambda m: m["message_id"] > seen and "⏳" not in m["plain"] and "重新加载" in m["plain"], count=1
    )


async def events(bot, kind: str) -> list[tuple[int, str, str]]:
    rows = await bot.svc.db.fetchall("SELECT tg_id, script_id, source FROM kb_script_events WHERE kind = ? ORDER BY id", (kind,))
    return [(r["tg_id"], r["script_id"], r["source"]) for r in rows]


async def test_keywords_show_the_best_script_with_alternatives_and_count_a_view(bot):
    reply = await bot.say(AGENT, "/s 退货运费谁出")
    kb = bot.svc.kb.get()
    best = kb.search("退货运费谁出", top=5)
    assert best[0].script.title in reply["plain"]
    assert "内部提示" in reply["plain"]
    body = pre_block(reply)
    assert best[0].script.note.splitlines()[0] not in body  # the rule is never in the copy block
    data = button_data(reply)
    alternatives = [d for d in data if d.startswith("kb:o:a:")]
    assert len(alternatives) == 4
    assert [d.split(":")[3] for d in alternatives] == [h.script.id for h in best[1:5]]
    assert await events(bot, "view") == [(AGENT, best[0].script.id, "search")]


async def test_pasted_multiline_buyer_message_is_a_search(bot):
    pasted = "亲 你好\n我昨天收到的杯子\n打开一看碎了两个 外箱也压扁了\n怎么处理"
    reply = await bot.say(AGENT, f"/s {pasted}")
    script_id = (await events(bot, "view"))[-1][1]
    assert bot.svc.kb.get().get(script_id).category == "damaged"
    assert "破损" in reply["plain"] or "碎" in reply["plain"]
    # the same message pasted without a command is searched too, and the fallback stays quiet
    before = len(bot.emu.messages(AGENT))
    again = await bot.say(AGENT, pasted)
    assert len(bot.emu.messages(AGENT)) == before + 1
    assert "没看懂" not in again["plain"]
    assert (await events(bot, "view"))[-1] == (AGENT, script_id, "search")


async def test_pending_input_of_another_feature_is_left_alone(bot):
    await bot.say(AGENT, "/help")  # creates user_data for the agent
    bot.app.user_data[AGENT]["pending"] = "handover_text"
    before = await events(bot, "view")
    seen = bot.last_id(AGENT)
    bot.emu.send_text(AGENT, "快递一直不更新")
    await bot.emu.wait_until_idle()
    assert await events(bot, "view") == before  # not searched
    assert not any("内部提示" in m["plain"] for m in bot.emu.messages(AGENT) if m["message_id"] > seen)
    bot.app.user_data[AGENT].pop("pending")
    await bot.say(AGENT, "快递一直不更新")
    assert len(await events(bot, "view")) == len(before) + 1


async def test_empty_query_opens_the_category_menu_then_a_category_then_a_script(bot):
    menu = await bot.say(AGENT, "/s")
    assert "话术分类" in menu["plain"]
    data = button_data(menu)
    assert "kb:c:return_exchange" in data and len([d for d in data if d.startswith("kb:c:")]) == 16
    # a category: the same message turns into that category's scripts
    listing = await bot.press_edit(AGENT, menu, "kb:c:not_received", "签收未收到")
    kb = bot.svc.kb.get()
    wanted = kb.scripts_in("not_received")
    assert [d.split(":")[3] for d in button_data(listing) if d.startswith("kb:o:")] == [s.id for s in wanted]
    # a script opens as a new message; "back" returns the list to the menu
    opened = await bot.press_new(AGENT, listing, f"kb:o:m:{wanted[0].id}")
    assert opened["message_id"] != menu["message_id"] and wanted[0].title in opened["plain"]
    assert (await events(bot, "view"))[-1] == (AGENT, wanted[0].id, "menu")
    assert "话术分类" in (await bot.press_edit(AGENT, listing, "kb:m", "话术分类"))["plain"]


async def test_order_number_fills_the_order_fields(bot):
    await insert_order(bot)
    reply = await bot.say(AGENT, f"/s 物流一直不更新 {ORDER_NO}")
    body = pre_block(reply)
    assert "圆通速递" in body and "YT8800123456789" in body and "【" not in body
    assert f"已填入订单 {ORDER_NO}" in reply["plain"]
    # related/alternative buttons carry the order; opening one fills it too
    carried = [d for d in button_data(reply) if d.startswith("kb:o:") and d.endswith(ORDER_NO)]
    assert carried
    assert f"已填入订单 {ORDER_NO}" in (await bot.press_new(AGENT, reply, carried[0]))["plain"]
    # an order card / reminder opens a script through the kb:open:<script>:<order> form
    from handlers.scripts import open_button

    button = open_button(bot.app, "ship_out_of_stock", ORDER_NO)
    assert button.callback_data == f"kb:o:x:ship_out_of_stock:{ORDER_NO}"
    sent = await bot.app.bot.send_message(AGENT, "订单卡片", reply_markup={"inline_keyboard": [[button.to_dict()]]})
    card = await bot.press_new(AGENT, {"chat_id": AGENT, "message_id": sent.message_id}, button.callback_data)
    assert "加厚羊羔绒外套" in pre_block(card) and "【预计到货日期】" in pre_block(card)
    assert "预计到货日期" in card["plain"].split(pre_block(card))[-1]  # the agent is told which slot to fill
    assert (await events(bot, "view"))[-1] == (AGENT, "ship_out_of_stock", "order")


async def test_unknown_variables_are_visible_slots(bot):
    reply = await bot.say(AGENT, "/s 物流一直不更新")
    body = pre_block(reply)
    assert "【快递公司】" in body and "【快递单号】" in body
    assert "发送前请把【】里的空位换成实际内容" in reply["plain"]
    unknown = await bot.say(AGENT, "/s 物流一直不更新 4099999999999999999")
    assert "没找到订单" in unknown["plain"] and "【快递单号】" in pre_block(unknown)


async def test_copy_button_for_short_scripts_only_and_used_button_counts_once(bot):
    short = await bot.say(AGENT, "/s 退货地址")
    copies = copy_buttons(short)
    assert len(copies) == 1 and copies[0]["copy_text"]["text"] == pre_block(short)
    script_id = next(d for d in button_data(short) if d.startswith("kb:u:")).split(":")[2]
    assert "已记录" in (await bot.press_answer(AGENT, short, f"kb:u:{script_id}"))["text"]
    assert await events(bot, "copy") == [(AGENT, script_id, "button")]
    await bot.emu.wait_for_request("editMessageReplyMarkup")
    after = bot.emu.messages(AGENT)[-1]
    assert f"kb:u:{script_id}" not in button_data(after) and copy_buttons(after)  # copy button stays
    long = await bot.say(AGENT, "/s 超长说明书测试")
    assert len(pre_block(long)) > 256
    assert copy_buttons(long) == [] and any(d.startswith("kb:u:use_long_manual") for d in button_data(long))


async def test_related_buttons_open_related_scripts(bot):
    reply = await bot.say(AGENT, "/s 退货地址")
    kb = bot.svc.kb.get()
    related = [d for d in button_data(reply) if d.startswith("kb:o:r:")]
    script = kb.get((await events(bot, "view"))[-1][1])
    assert related and {d.split(":")[3] for d in related} <= {r.id for r in kb.related(script)}
    opened_id = related[0].split(":")[3]
    assert kb.get(opened_id).title in (await bot.press_new(AGENT, reply, related[0]))["plain"]
    assert (await events(bot, "view"))[-1] == (AGENT, opened_id, "related")


async def test_health_safety_scripts_carry_the_escalation_note(bot):
    reply = await bot.say(AGENT, "/s 用了面霜过敏 脸上红肿")
    assert "升级主管" in reply["plain"]
    notes = reply["plain"].split(pre_block(reply))[-1]  # what follows the copy block
    assert "升级主管" in notes and "内部提示" in notes


async def test_no_match_says_so_shows_the_menu_and_records_a_miss(bot):
    reply = await bot.say(AGENT, "/s 哈哈哈")
    assert "没找到" in reply["plain"]
    assert len([d for d in button_data(reply) if d.startswith("kb:c:")]) == 16
    misses = await stats.top_misses(bot.svc.db, 0)
    assert [(m.query, m.count) for m in misses] == [("哈哈哈", 1)]
    assert await events(bot, "view") == []


async def test_a_pasted_bare_opener_gets_the_opener_reply_not_no_match(bot):
    for opener in ("在吗", "有人吗？"):
        reply = await bot.say(AGENT, opener)
        assert "没找到" not in reply["plain"], opener
        assert "有什么可以帮您" in pre_block(reply) and "小美" in pre_block(reply)
    assert [e[1] for e in await events(bot, "view")] == ["greet_hello", "greet_hello"]
    assert await stats.top_misses(bot.svc.db, 0) == []


async def test_guided_flow_to_its_end_with_back_and_restart(bot):
    menu = await bot.say(AGENT, "/aftersale")
    kb = bot.svc.kb.get()
    received = kb.flow("received")
    assert "flow:g:received:" in button_data(menu)
    first = received.node(received.start)
    step = await bot.press_edit(AGENT, menu, "flow:g:received:", first.ask)
    # 不喜欢 → 7天内 → 完好 → 退货退款
    path = ""
    node = first
    for wanted in ("不喜欢", f"{kb.policy['return_days']}天内", "齐全", "退货退款"):
        index = next(i for i, c in enumerate(node.choices) if c.label.startswith(wanted))
        path += str(index)
        answered = node.choices[index].label
        step = await bot.press_edit(AGENT, step, f"flow:g:received:{path}", answered)
        node = received.node(node.choices[index].next)
        assert (node.ask or "处理建议") in step["plain"]
    assert node.is_outcome
    text = step["plain"]
    assert "处理建议" in text and all(item in text for item in node.checklist)
    assert all(kb.get(s).title in text for s in node.send)
    opens = [d for d in button_data(step) if d.startswith("kb:o:f:")]
    assert [d.split(":")[3] for d in opens] == list(node.send)
    # back one step shows the previous question again; restart shows the stages
    back = await bot.press_edit(AGENT, step, f"flow:g:received:{path[:-1]}", "买家想怎么处理")
    assert "处理建议" not in back["plain"]
    step = await bot.press_edit(AGENT, back, f"flow:g:received:{path}", "处理建议")
    assert kb.get(node.send[0]).title in (await bot.press_new(AGENT, step, opens[0]))["plain"]
    assert (await events(bot, "view"))[-1] == (AGENT, node.send[0], "flow")
    await bot.press_edit(AGENT, menu, "flow:m", "先选订单现在的阶段")
    # a stale path (the flow changed since) restarts instead of crashing
    old = await bot.app.bot.send_message(AGENT, "旧按钮", reply_markup={"inline_keyboard": [[{"text": "x", "callback_data": "flow:g:received:9999"}]]})
    answer = await bot.press_answer(AGENT, {"chat_id": AGENT, "message_id": old.message_id}, "flow:g:received:9999")
    assert "重新开始" in answer["text"]


async def test_inline_mode_registered_gets_scripts_stranger_gets_nothing(bot):
    bot.emu.add_user(STRANGER, "路人")
    answer = await bot.inline(AGENT, "物流一直不更新")
    assert answer["is_personal"] and answer["cache_time"] <= 30
    results = answer["results"]
    assert 1 <= len(results) <= 50 and results[0]["id"] == "log_not_updated"
    content = results[0]["input_message_content"]
    assert "【快递单号】" in content["message_text"] and "parse_mode" not in content
    assert (await bot.inline(STRANGER, "物流一直不更新"))["results"] == []
    # an order number in the inline query fills the order; an empty query offers popular scripts
    await insert_order(bot)
    filled = await bot.inline(AGENT, f"物流不更新 {ORDER_NO}")
    assert "YT8800123456789" in filled["results"][0]["input_message_content"]["message_text"]
    await bot.say(AGENT, "/s 发票怎么开")
    top = (await bot.inline(AGENT, ""))["results"]
    assert top[0]["id"] == (await events(bot, "view"))[-1][1] and len(top) <= 50


async def test_failed_reload_keeps_the_old_kb_and_a_good_reload_swaps_it(bot, kb_copy):
    before = await bot.say(AGENT, "/s 退货地址")
    old = bot.svc.kb.get()
    good_file = (kb_copy / "scripts" / "invoice.yaml").read_text(encoding="utf-8")
    (kb_copy / "scripts" / "invoice.yaml").write_text(good_file + BROKEN_SCRIPT, encoding="utf-8")
    refused = await bot.say(AGENT, "/kb_reload")
    assert "权限" in refused["plain"]
    report = await reload(bot)
    assert "没有重新加载" in report["plain"]
    assert "scripts/invoice.yaml:" in report["plain"] and "'nope'" in report["plain"]
    assert "Jinja2" in report["plain"] and "<坏的>" not in report["plain"]
    assert bot.svc.kb.get() is old
    again = await bot.say(AGENT, "/s 退货地址")
    assert pre_block(again) == pre_block(before)  # still served from the old knowledge base
    # fixed, and the shop changed its return address in policy.yaml
    (kb_copy / "scripts" / "invoice.yaml").write_text(good_file, encoding="utf-8")
    policy = (kb_copy / "policy.yaml").read_text(encoding="utf-8")
    (kb_copy / "policy.yaml").write_text(policy.replace("示例路88号", "新仓路99号"), encoding="utf-8")
    ok = await reload(bot)
    assert "已重新加载" in ok["plain"] and f"{len(old)} 条话术" in ok["plain"]
    assert bot.svc.kb.get() is not old
    assert "新仓路99号" in pre_block(await bot.say(AGENT, "/s 退货地址"))
    # nothing changed since: answered at once without reloading, unless forced
    current = bot.svc.kb.get()
    assert "没有变化" in (await bot.say(SUPERVISOR, "/kb_reload"))["plain"]
    assert bot.svc.kb.get() is current
    seen = bot.last_id(SUPERVISOR)
    bot.emu.send_text(SUPERVISOR, "/kb_reload force")
    await bot.emu.wait_for_message(SUPERVISOR, lambda m: m["message_id"] > seen and "已重新加载" in m["plain"])
    assert bot.svc.kb.get() is not current


async def test_reload_error_report_is_escaped_and_split(bot, kb_copy):
    lines = [f"- id: bad_<x>_{i}\n  title: t\n" for i in range(200)]
    (kb_copy / "scripts" / "zz_many.yaml").write_text("".join(lines), encoding="utf-8")
    await reload(bot)
    await bot.emu.wait_for_message(SUPERVISOR, lambda m: "kefu kb check" in m["plain"])
    await bot.emu.wait_until_idle()
    report = "\n".join(m["plain"] for m in bot.emu.messages(SUPERVISOR))
    assert "没有重新加载" in report and "bad_<x>_0" in report and "kefu kb check" in report
    assert all(len(m["plain"]) <= 4096 for m in bot.emu.messages(SUPERVISOR))


async def test_kb_stats_shows_views_copies_and_misses(bot):
    reply = await bot.say(AGENT, "/s 退货地址")
    script_id = (await events(bot, "view"))[-1][1]
    await bot.press_answer(AGENT, reply, f"kb:u:{script_id}")
    await bot.say(AGENT, "/s 哈哈哈")
    await bot.say(AGENT, "/s 哈哈哈")
    assert "权限" in (await bot.say(AGENT, "/kb_stats"))["plain"]
    report = (await bot.say(SUPERVISOR, "/kb_stats"))["plain"]
    title = bot.svc.kb.get().get(script_id).title
    assert "最近 7 天" in report
    assert f"{title} — 1 / 1" in report and "哈哈哈 — 2" in report
    # outside the period: nothing
    bot.clock.advance(days=3)
    assert "暂无记录" in (await bot.say(SUPERVISOR, "/kb_stats 1"))["plain"]
    assert "用法" in (await bot.say(SUPERVISOR, "/kb_stats abc"))["plain"]
    assert "用法" in (await bot.say(SUPERVISOR, "/kb_stats 0"))["plain"]


async def test_broken_kb_at_start_is_reported_not_fatal(tmp_path, clock, monkeypatch):
    broken = tmp_path / "broken_kb"
    shutil.copytree(ROOT / "scripts_kb", broken)
    (broken / "categories.yaml").write_text("categories: [", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    running = await start_kefu(tmp_path, clock, kefu_kb_dir=broken)
    try:
        await running.add_person(AGENT, Role.AGENT)
        assert "话术库暂时无法使用" in (await Bot(running).say(AGENT, "/s 退货"))["plain"]
        assert "话术库暂时无法使用" in (await Bot(running).say(AGENT, "退货"))["plain"]
        assert (await Bot(running).inline(AGENT, "退货"))["results"] == []
    finally:
        await stop_kefu(running)


def test_callback_data_fits_for_every_script_and_flow_step():
    from handlers.scripts import PATH_CHARS, open_data

    kb = load_kb(ROOT / "scripts_kb")
    for script in kb.scripts:
        assert len(open_data(script.id, "261122-000000000000001", "r").encode()) <= 64
        assert len(f"kb:u:{script.id}".encode()) <= 64
    assert open_data("x" * 40, "1" * 25).count(":") == 3  # too long with the order: order left out
    for flow in kb.flows:
        assert len(f"flow:g:{flow.id}:{PATH_CHARS[0] * 12}".encode()) <= 64


async def test_admins_are_told_at_start_while_policy_has_example_values(tmp_path, clock, monkeypatch, caplog):
    from tests.harness import ADMIN

    monkeypatch.chdir(tmp_path)
    kb_dir = tmp_path / "kb"
    shutil.copytree(ROOT / "scripts_kb", kb_dir)
    running = await start_kefu(tmp_path, clock, kefu_kb_dir=kb_dir)
    try:
        notices = [m["plain"] for m in running.emu.messages(ADMIN) if "示例值" in m["plain"]]
        assert len(notices) == 1, notices
        assert "return_address" in notices[0] and "400-000-0000" in notices[0] and "policy.yaml" in notices[0]
        assert "example values" in caplog.text and "return_phone" in caplog.text
    finally:
        await stop_kefu(running)
    # the shop fills in its own values and empties the list: no notice at the next start
    policy = kb_dir / "policy.yaml"
    text = policy.read_text(encoding="utf-8")
    start = text.index("example_values:")
    policy.write_text(text[:start] + "example_values: []" + text[text.index("\n", start):], encoding="utf-8")
    (tmp_path / "again").mkdir()
    running = await start_kefu(tmp_path / "again", clock, kefu_kb_dir=kb_dir)
    try:
        assert not [m for m in running.emu.messages(ADMIN) if "示例值" in m["plain"]]
        assert running.svc.kb.get().get("ret_return_address") is not None
    finally:
        await stop_kefu(running)
