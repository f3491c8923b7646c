"""The handover book end to end: the real bot against the emulator, time moved by the fake clock.

The team: two day agents, two night agents, a supervisor without a shift. Shifts are the
defaults: day 08:30–17:30, night 17:30–01:00, then the night gap until 08:30.
"""

import struct
import zlib

import pytest

from bot.clock import to_ts
from bot.people import Role
from tests.conftest import local

DAY, DAY2, NIGHT, NIGHT2, SUPERVISOR, STRANGER = 2001, 2004, 2003, 2005, 2002, 2999
TAOBAO_NO = "3912345678901234567"
REFUSAL = "需要主管邀请"


@pytest.fixture
async def team(kefu):
    await kefu.add_person(DAY, Role.AGENT, shift="day", name="小美")
    await kefu.add_person(DAY2, Role.AGENT, shift="day", name="小丽")
    await kefu.add_person(NIGHT, Role.AGENT, shift="night", name="阿强")
    await kefu.add_person(NIGHT2, Role.AGENT, shift="night", name="阿伟")
    await kefu.add_person(SUPERVISOR, Role.SUPERVISOR, shift=None, name="李主管")
    kefu.emu.add_user(STRANGER, "路人")
    return kefu


def datas(message) -> list[str]:
    markup = (message or {}).get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row if "callback_data" in b]


def cards(kefu, chat_id: int, item_id: int) -> list[dict]:
    """Messages in a chat that show this item (its card carries the 记录 button)."""
    return [m for m in kefu.emu.messages(chat_id) if f"ho:view:{item_id}" in datas(m)]


def plains(kefu, chat_id: int) -> list[str]:
    return [m["plain"] for m in kefu.emu.messages(chat_id)]


async def item_ids(kefu) -> list[int]:
    return [r[0] for r in await kefu.svc.db.fetchall("SELECT id FROM handover_items ORDER BY id")]


async def at(kefu, moment: str) -> None:
    """Move the fake clock and run the tick job once, as the JobQueue would."""
    kefu.clock.set(local(moment))
    await kefu.tick()


async def add_order(kefu, order_no, *, status="paid_unshipped", shop="旗舰店", created=None, paid=None):
    now = to_ts(local("2026-11-20 00:00"))
    await kefu.svc.db.execute(
        "INSERT INTO orders (platform, order_no, shop, status, created_at, paid_at, first_seen_at, updated_at)"
        " VALUES ('taobao', ?, ?, ?, ?, ?, ?, ?)",
        (order_no, shop, status, created and to_ts(local(created)), paid and to_ts(local(paid)), now, now),
    )


async def resolve(kefu, user_id: int, card: dict, item_id: int, note: str | None = None) -> None:
    """Press 已解决 on a card, then write the note or press 不写备注 on the question."""
    await kefu.press(user_id, card, data=f"ho:res:{item_id}")
    if note is None:
        await kefu.press(user_id, kefu.emu.last_message(user_id), data=f"ho:rsn:{item_id}")
    else:
        await kefu.say(user_id, note)


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")


# --- logging ---------------------------------------------------------------------------------

async def test_log_with_text_order_link_urgent_flag_and_kind_buttons(team):
    kefu = team
    await add_order(kefu, TAOBAO_NO, shop="旗舰店", paid="2026-11-22 09:00")
    reply = await kefu.say(DAY, f"/handover !买家要求今天退款 {TAOBAO_NO}")
    text = reply["plain"]
    assert "已记入交接本" in text and "10:10 前可以修改或撤回" in text
    assert "紧急" in text and "#1 退款待处理" in text  # kind guessed from 退款
    assert f"订单 {TAOBAO_NO}（旗舰店 · 待发货）" in text and f"/order {TAOBAO_NO}" in text
    assert "小美 · 白班 11-23" in text
    buttons = datas(reply)
    assert {"ho:kind:1:refund", "ho:kind:1:other", "ho:edit:1", "ho:wd:1", "ho:res:1", "ho:view:1"} <= set(buttons)
    assert "ho:take:1" not in buttons  # nobody takes over before the shift change

    await kefu.press(DAY, reply, data="ho:kind:1:warehouse")
    card = cards(kefu, DAY, 1)[0]
    assert "#1 仓库跟进" in card["plain"]
    captions = [b["text"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
    assert "✅ 仓库跟进" in captions and "退款待处理" in captions

    reply = await kefu.say(DAY, "/jj #998877 买家等回复尺码")
    assert "订单 998877（系统里暂时没有这个订单）" in reply["plain"] and "待客户回复" in reply["plain"]
    row = await kefu.svc.db.fetchone("SELECT * FROM handover_items WHERE id = 1")
    assert (row["urgent"], row["order_no"], row["kind"], row["occurrence"]) == (1, TAOBAO_NO, "warehouse", "day:2026-11-23")
    assert (await kefu.svc.db.fetchone("SELECT order_no FROM handover_items WHERE id = 2"))[0] == "998877"
    assert "不能为空" in (await kefu.say(DAY, "/handover !"))["plain"]
    assert "太长" in (await kefu.say(DAY, "/handover " + "长" * 1001))["plain"]
    assert await item_ids(kefu) == [1, 2]


async def test_handover_alone_asks_for_the_text_with_kind_buttons_and_cancel(team):
    kefu = team
    ask = await kefu.say(DAY, "/handover")
    assert "写交接" in ask["plain"] and "/cancel" in ask["plain"]
    assert datas(ask) == [f"ho:pk:{k}" for k in ("refund", "customer", "warehouse", "complaint", "other")]
    captions = [b["text"] for row in ask["reply_markup"]["inline_keyboard"] for b in row]
    assert captions == ["退款待处理", "待客户回复", "仓库跟进", "投诉跟进", "其他"]
    await kefu.press(DAY, ask, data="ho:pk:complaint")
    assert "类型：投诉跟进" in kefu.emu.messages(DAY)[-1]["plain"]
    logged = await kefu.say(DAY, "买家说再不处理就去平台投诉，已安抚")
    assert "已记入交接本" in logged["plain"] and "#1 投诉跟进" in logged["plain"]

    await kefu.say(DAY, "/jj")
    assert (await kefu.say(DAY, "/cancel"))["plain"] == "已取消。"
    after = await kefu.say(DAY, "退货运费谁出")  # plain text again: not a handover item
    assert "已记入交接本" not in after["plain"]
    assert await item_ids(kefu) == [1]

    # The wait expires: a quarter of an hour later, text is text again.
    await kefu.say(DAY, "/handover")
    kefu.clock.advance(minutes=16)
    await kefu.say(DAY, "顺便问下今天发货吗")
    assert await item_ids(kefu) == [1]


async def test_attachments_photo_and_file(team):
    kefu = team
    kefu.emu.send_photo(DAY, png(), caption="/handover 外箱破损照片，仓库确认中")
    await kefu.emu.wait_until_idle()
    logged = kefu.emu.last_message(DAY)
    assert "已记入交接本" in logged["plain"] and "📎 附件：图片" in logged["plain"] and "#1 仓库跟进" in logged["plain"]
    assert "ho:att:1" in datas(logged)

    kefu.emu.send_document(DAY, "聊天记录.pdf", b"%PDF-1.4 chat log", caption="/jj 聊天记录见附件，买家要补偿", mime_type="application/pdf")
    await kefu.emu.wait_until_idle()
    assert "📎 附件：聊天记录.pdf" in kefu.emu.last_message(DAY)["plain"]

    # A photo with a bare /handover caption: the text is asked for, then both are one item.
    kefu.emu.send_photo(DAY, png(), caption="/handover")
    await kefu.emu.wait_until_idle()
    assert "已收到附件" in kefu.emu.last_message(DAY)["plain"]
    logged = await kefu.say(DAY, "快递单号对不上，等快递回复")
    assert "#3" in logged["plain"] and "附件：图片" in logged["plain"]
    rows = await kefu.svc.db.fetchall("SELECT attachment_type, attachment_name FROM handover_items ORDER BY id")
    assert [tuple(r) for r in rows] == [("photo", None), ("document", "聊天记录.pdf"), ("photo", None)]

    await kefu.press(DAY, logged, data="ho:att:3")
    sent = kefu.emu.last_message(DAY)
    assert sent["photo"] and "交接 #3 的附件" in sent["caption"]
    # not taken for an order export, and the fallback stayed silent
    assert not any("不知道要做什么" in p or "没看懂" in p for p in plains(kefu, DAY))


async def test_edit_window_of_ten_minutes_author_only_with_history(team):
    kefu = team
    logged = await kefu.say(DAY, "/handover 买家等回复颜色")
    kefu.clock.advance(minutes=9)
    await kefu.press(DAY, logged, data="ho:edit:1")
    assert "修改交接 #1" in kefu.emu.last_message(DAY)["plain"]
    assert "已修改 #1" in (await kefu.say(DAY, "！买家等回复颜色，今天必须发"))["plain"]
    card = cards(kefu, DAY, 1)[0]
    assert card["message_id"] == logged["message_id"] and "紧急" in card["plain"] and "今天必须发" in card["plain"]

    query = await kefu.press(NIGHT, logged, data="ho:wd:1")  # someone else's item
    assert "只有写这条交接的同事" in kefu.emu.callback_answer(query)["text"]

    kefu.clock.advance(minutes=1)  # 10 minutes after writing
    for data in ("ho:edit:1", "ho:wd:1", "ho:kind:1:refund"):
        query = await kefu.press(DAY, logged, data=data)
        answer = kefu.emu.callback_answer(query)
        assert answer["show_alert"] and "超过 10 分钟" in answer["text"], data

    await kefu.press(DAY, logged, data="ho:view:1")
    detail = kefu.emu.last_message(DAY)["plain"]
    assert "写入" in detail and "修改，原内容：买家等回复颜色，标为紧急" in detail

    # Within the window an item can be withdrawn; it is then never handed over.
    second = await kefu.say(DAY, "/handover 写错了")
    query = await kefu.press(DAY, second, data="ho:wd:2")
    assert "确定" in kefu.emu.callback_answer(query)["text"]  # it affects others: asked once more
    assert "已撤回" not in cards(kefu, DAY, 2)[0]["plain"]
    await kefu.press(DAY, second, data="ho:wdn:2")  # 不撤回: nothing changes
    assert "ho:wd:2" in str(cards(kefu, DAY, 2)[0]["reply_markup"])
    await kefu.press(DAY, second, data="ho:wd:2")
    await kefu.press(DAY, second, data="ho:wdy:2")
    assert "已撤回" in cards(kefu, DAY, 2)[0]["plain"]
    await at(kefu, "2026-11-23 17:30")
    assert not cards(kefu, NIGHT, 2) and len(cards(kefu, NIGHT, 1)) == 1


# --- shift change ----------------------------------------------------------------------------

async def test_pre_end_prompt_lists_what_you_still_own(team):
    """Both real features: the reminders tick delivers a 催付 card, 小美 claims it with the real
    button, and the handover prompt lists it (bot.reminders.open_claims)."""
    kefu = team
    await add_order(kefu, "A100200300400", status="unpaid", created="2026-11-23 03:00")
    await at(kefu, "2026-11-23 16:00")
    card = next(m for m in kefu.emu.messages(DAY) if "A100200300400" in m["plain"] and "rem:claim:" in str(datas(m)))
    claim = next(d for d in datas(card) if d.startswith("rem:claim:"))
    await kefu.press(DAY, card, data=claim)
    await kefu.say(DAY, "/handover 买家等仓库回复补发")
    before = len(kefu.emu.messages(DAY))
    await at(kefu, "2026-11-23 17:14")
    assert len(kefu.emu.messages(DAY)) == before
    await at(kefu, "2026-11-23 17:15")
    prompt = kefu.emu.last_message(DAY)
    assert "还有 15 分钟交班" in prompt["plain"] and "17:30" in prompt["plain"]
    assert "你名下还没解决的交接（1）" in prompt["plain"] and "买家等仓库回复补发" in prompt["plain"]
    assert "你认领了还没处理完的提醒（1）" in prompt["plain"] and "催付 订单 A100200300400" in prompt["plain"]
    assert "你名下没有未完成的提醒或交接" in kefu.emu.last_message(DAY2)["plain"]
    assert kefu.emu.messages(NIGHT) == []
    await at(kefu, "2026-11-23 17:20")  # once per shift
    assert sum("还有" in p and "交班" in p for p in plains(kefu, DAY)) == 1
    await kefu.press(DAY, prompt, data="ho:new")
    assert "写交接" in kefu.emu.last_message(DAY)["plain"]
    # The night shift is prompted before 01:00.
    await at(kefu, "2026-11-24 00:45")
    assert "还有 15 分钟交班" in kefu.emu.last_message(NIGHT)["plain"]


async def test_digest_at_1730_take_over_resolve_and_supervisor_alert(team):
    kefu = team
    await kefu.say(SUPERVISOR, "/start")
    kefu.clock.set(local("2026-11-23 16:00"))
    await kefu.say(DAY, "/handover 买家问发票，财务明天开")
    await kefu.say(DAY, f"/handover !买家要求今天退款 {TAOBAO_NO}")
    await at(kefu, "2026-11-23 17:30")
    night = plains(kefu, NIGHT)
    assert "晚班 11-23 交接本" in night[0] and "未结交接 2 条" in night[0] and "紧急 1 条" in night[0]
    assert "#2" in night[1] and "紧急" in night[1]  # urgent first
    assert "#1" in night[2] and "⏳ 待晚班 11-23 接手" in night[2]
    assert not any("交接本" in p for p in plains(kefu, DAY2))  # the day shift gets no digest now
    assert len(kefu.emu.messages(NIGHT2)) == 3

    card = cards(kefu, NIGHT, 2)[0]
    assert datas(card)[:2] == ["ho:take:2", "ho:res:2"]
    query = await kefu.press(NIGHT, card, data="ho:take:2")
    assert "已接手 #2" in kefu.emu.callback_answer(query)["text"]
    for chat in (NIGHT, NIGHT2, DAY):  # every copy shows who took it over
        shown = cards(kefu, chat, 2)[0]
        assert "阿强 已接手（17:30）" in shown["plain"] and "ho:take:2" not in datas(shown), chat
    listing = await kefu.say(NIGHT2, "/handovers")  # fetched before anyone takes #1
    assert "ho:take:1:l" in datas(listing) and "ho:take:2:l" not in datas(listing)
    await kefu.press(NIGHT, cards(kefu, NIGHT, 1)[0], data="ho:take:1")
    query = await kefu.press(NIGHT2, listing, data="ho:take:1:l")  # too late
    answer = kefu.emu.callback_answer(query)
    assert answer["show_alert"] and "#1 已由 阿强 在 17:30 接手" in answer["text"]

    # Resolving asks for a short note, in private.
    await kefu.press(NIGHT2, cards(kefu, NIGHT2, 2)[0], data="ho:res:2")
    assert "解决交接 #2" in kefu.emu.last_message(NIGHT2)["plain"]
    assert "已解决 #2" in (await kefu.say(NIGHT2, "已退款，买家确认"))["plain"]
    resolved = cards(kefu, NIGHT, 2)[0]
    assert "已解决（阿伟" in resolved["plain"] and "已退款，买家确认" in resolved["plain"]

    # Supervisors hear about items nobody took over 30 minutes after the shift start.
    await kefu.say(DAY, "/handover 这条是 17:35 补写的")  # a day agent writing late
    await at(kefu, "2026-11-23 17:36")
    late = cards(kefu, NIGHT, 3)[0]
    assert "🆕 交接补充" in late["plain"]
    await at(kefu, "2026-11-23 17:59")
    assert not any("没人接手" in p for p in plains(kefu, SUPERVISOR))
    await at(kefu, "2026-11-23 18:00")
    assert not any("没人接手" in p for p in plains(kefu, SUPERVISOR))  # #1 taken, #2 resolved, #3 is new
    await at(kefu, "2026-11-23 18:06")  # 30 minutes after the late item was handed
    alerts = [m for m in kefu.emu.messages(SUPERVISOR) if "没人接手" in m["plain"]]
    assert len(alerts) == 1 and "#3" in alerts[0]["plain"] and datas(alerts[0]) == ["ho:take:3", "ho:res:3"]
    await at(kefu, "2026-11-23 18:30")
    assert len([p for p in plains(kefu, SUPERVISOR) if "没人接手" in p]) == 1  # once
    # The supervisor resolves it from the alert without a note.
    await kefu.press(SUPERVISOR, alerts[0], data="ho:res:3")
    ask = kefu.emu.last_message(SUPERVISOR)
    assert "解决交接 #3" in ask["plain"]
    await kefu.press(SUPERVISOR, ask, data="ho:rsn:3")
    assert "已解决（李主管" in cards(kefu, NIGHT, 3)[0]["plain"]


async def test_alert_lists_items_nobody_took_over(team):
    kefu = team
    kefu.clock.set(local("2026-11-23 12:00"))
    await kefu.say(DAY, "/handover 买家问什么时候到货")
    await kefu.say(DAY, "/handover !差评威胁，主管知悉")
    await at(kefu, "2026-11-23 17:30")
    await kefu.press(NIGHT, cards(kefu, NIGHT, 1)[0], data="ho:take:1")
    await at(kefu, "2026-11-23 18:00")
    alert = kefu.emu.last_message(SUPERVISOR)
    assert "晚班 11-23 有 1 条交接超过 30 分钟没人接手" in alert["plain"]
    assert "#2" in alert["plain"] and "差评威胁" in alert["plain"] and "#1" not in alert["plain"]
    await kefu.press(SUPERVISOR, alert, data="ho:take:2")
    assert "李主管 已接手" in cards(kefu, NIGHT, 2)[0]["plain"]


async def test_digest_at_0830_after_the_night_gap_and_carry_over_across_two_shifts(team):
    kefu = team
    await add_order(kefu, "A100200300400", status="unpaid", created="2026-11-23 23:00")  # 催付 due 11:00
    await add_order(kefu, "B100200300400", status="paid_unshipped", paid="2026-11-22 07:00")  # ship by 07:00: overdue
    kefu.clock.set(local("2026-11-23 11:00"))
    await kefu.say(DAY, "/handover 仓库说明天补发，跟进物流")
    await at(kefu, "2026-11-23 17:30")
    await kefu.press(NIGHT, cards(kefu, NIGHT, 1)[0], data="ho:take:1")
    kefu.clock.set(local("2026-11-23 23:00"))
    await kefu.say(NIGHT, "/jj 买家半夜要改地址，等早班确认能否拦截")  # the night shift writes the book
    night_messages = len(kefu.emu.messages(NIGHT))
    for moment in ("2026-11-24 01:00", "2026-11-24 03:00", "2026-11-24 08:29"):  # the night gap
        await at(kefu, moment)
    assert len(kefu.emu.messages(NIGHT)) == night_messages  # the missed 00:45 prompt is not sent after 01:00
    assert not any("交接本" in p for p in plains(kefu, DAY)[1:])

    await at(kefu, "2026-11-24 08:30")
    day = plains(kefu, DAY)
    header = next(p for p in day if "白班 11-24 交接本" in p)
    assert "未结交接 2 条：上一班新交的 1 条，之前带过来的 1 条" in header
    assert "本班到期的订单（2）" in header
    assert "催付 A100200300400" in header and "11:00 到期" in header
    assert "发货 B100200300400" in header and "已超时（11-24 07:00）" in header
    carried = cards(kefu, DAY, 1)[-1]
    assert "🔁 已连续交接 2 个班次" in carried["plain"] and "⏳ 待白班 11-24 接手" in carried["plain"]
    assert "ho:take:1" in datas(carried)
    assert "阿强 · 晚班 11-23" in cards(kefu, DAY, 2)[-1]["plain"]

    # Taken over again by the day shift but not resolved: the night shift gets it a third time.
    await kefu.press(DAY, carried, data="ho:take:1")
    await at(kefu, "2026-11-24 17:30")
    third = cards(kefu, NIGHT, 1)[-1]
    assert "已连续交接 3 个班次" in third["plain"] and "ho:take:1" in datas(third)
    await resolve(kefu, NIGHT, third, 1)
    await at(kefu, "2026-11-25 08:30")
    header = next(p for p in plains(kefu, DAY) if "白班 11-25 交接本" in p)
    assert "未结交接 1 条" in header
    assert len(cards(kefu, DAY, 1)) == 2  # its author's copy and the 11-24 digest; no copy on 11-25
    assert "已解决" in cards(kefu, DAY, 1)[-1]["plain"]


# --- looking back ----------------------------------------------------------------------------

async def test_open_list_search_and_supervisor_stats(team):
    kefu = team
    kefu.clock.set(local("2026-11-23 11:00"))
    await kefu.say(DAY, f"/handover 买家催退款 {TAOBAO_NO}")
    await kefu.say(DAY, "/handover 仓库发错颜色，补发中")
    await at(kefu, "2026-11-23 17:30")
    waiting = await kefu.say(NIGHT, "/handovers")
    assert datas(waiting)[:2] == ["ho:take:1:l", "ho:res:1"]  # 接手 offered in the list
    await kefu.press(NIGHT, cards(kefu, NIGHT, 1)[0], data="ho:take:1")
    kefu.clock.set(local("2026-11-23 17:40"))
    await kefu.press(NIGHT, cards(kefu, NIGHT, 2)[0], data="ho:take:2")
    await resolve(kefu, NIGHT, cards(kefu, NIGHT, 2)[0], 2)

    listing = await kefu.say(NIGHT, "/handovers")
    assert "未结交接 1 条" in listing["plain"] and "#1" in listing["plain"] and "#2" not in listing["plain"]
    assert datas(listing) == ["ho:res:1", "ho:view:1"]

    found = await kefu.say(NIGHT, f"/handovers {TAOBAO_NO}")
    assert f"订单 {TAOBAO_NO}" in found["plain"] and "共 1 条" in found["plain"] and "#1" in found["plain"]
    assert datas(found) == ["ho:res:1", "ho:view:1"]  # search results carry the same buttons
    found = await kefu.say(NIGHT, "/handovers 补发")
    assert "包含“补发”" in found["plain"] and "#2" in found["plain"] and "已解决" in found["plain"]
    assert datas(found) == ["ho:view:2"]
    found = await kefu.say(NIGHT, "/handovers 11-23")
    assert "2026-11-23 写的交接" in found["plain"] and "共 2 条" in found["plain"]
    found = await kefu.say(NIGHT, "/handovers 退款待处理")
    assert "类型“退款待处理”" in found["plain"] and "#1" in found["plain"]
    assert "没有找到" in (await kefu.say(NIGHT, "/handovers 不存在的事"))["plain"]

    stats = (await kefu.say(SUPERVISOR, "/handover_stats"))["plain"]
    assert "白班 11-23：写 2 · 收到 0 · 接手 0 · 解决 0" in stats
    assert "晚班 11-23：写 0 · 收到 2 · 接手 2（平均 5 分钟，最慢 10 分钟） · 解决 1" in stats
    assert "现在未结 1 条" in stats
    assert "白班 11-23" in (await kefu.say(SUPERVISOR, "/handover_stats 11-23"))["plain"]
    assert "用法" in (await kefu.say(SUPERVISOR, "/handover_stats 99"))["plain"]
    assert "用法" in (await kefu.say(SUPERVISOR, "/handover_stats 下周"))["plain"]
    assert "权限" in (await kefu.say(NIGHT, "/handover_stats"))["plain"]


async def test_strangers_are_refused_everything(team):
    kefu = team
    await kefu.say(DAY, "/handover 买家等回复")
    for text in ("/handover 我也写一条", "/jj 123", "/handovers", f"/handovers {TAOBAO_NO}", "/handover_stats", "/cancel"):
        assert REFUSAL in (await kefu.say(STRANGER, text))["plain"], text
    kefu.emu.send_photo(STRANGER, png(), caption="/handover 图片")
    await kefu.emu.wait_until_idle()
    assert REFUSAL in kefu.emu.last_message(STRANGER)["plain"]
    query = await kefu.press(STRANGER, cards(kefu, DAY, 1)[0], data="ho:res:1")  # a forwarded card
    answer = kefu.emu.callback_answer(query)
    assert answer["show_alert"] and "邀请" in answer["text"]
    assert await item_ids(kefu) == [1]
    assert all(REFUSAL in p for p in plains(kefu, STRANGER))
    row = await kefu.svc.db.fetchone("SELECT status FROM handover_items WHERE id = 1")
    assert row[0] == "open"


async def test_nothing_lost_or_repeated_across_restarts_between_shifts(team):
    kefu = team
    kefu.clock.set(local("2026-11-23 16:00"))
    logged = await kefu.say(DAY, "/handover 买家要换货，等仓库确认库存")
    await at(kefu, "2026-11-23 17:15")
    await kefu.restart()
    await at(kefu, "2026-11-23 17:20")
    assert sum("还有" in p and "交班" in p for p in plains(kefu, DAY)) == 1  # not repeated

    # Down over the shift start: the first tick after the restart sends the digest late.
    await kefu.restart()
    await at(kefu, "2026-11-23 17:45")
    assert any("晚班 11-23 交接本" in p for p in plains(kefu, NIGHT))
    await kefu.restart()
    await at(kefu, "2026-11-23 17:50")
    assert sum("晚班 11-23 交接本" in p for p in plains(kefu, NIGHT)) == 1
    assert len(cards(kefu, NIGHT, 1)) == 1
    await kefu.press(NIGHT, cards(kefu, NIGHT, 1)[0], data="ho:take:1")
    assert "阿强 已接手" in cards(kefu, DAY, 1)[0]["plain"]  # the author's copy, sent before two restarts
    assert cards(kefu, DAY, 1)[0]["message_id"] == logged["message_id"]

    # A restart in the night gap: the morning digest still carries the item, once.
    await at(kefu, "2026-11-24 03:00")
    await kefu.restart()
    await at(kefu, "2026-11-24 08:30")
    await kefu.restart()
    await at(kefu, "2026-11-24 08:31")
    assert sum("白班 11-24 交接本" in p for p in plains(kefu, DAY2)) == 1
    assert "已连续交接 2 个班次" in cards(kefu, DAY2, 1)[0]["plain"]
    await kefu.press(DAY2, cards(kefu, DAY2, 1)[0], data="ho:take:1")
    await kefu.restart()
    history = await kefu.svc.handover.history(1)
    assert [h.action for h in history] == ["create", "take", "take"]


async def test_stats_for_yesterday_follow_shift_days(team):
    kefu = team
    kefu.clock.set(local("2026-11-23 11:00"))
    await kefu.say(DAY, "/handover 昨天白班写的")
    kefu.clock.set(local("2026-11-24 00:30"))
    await kefu.say(NIGHT, "/handover 昨晚班零点后写的")  # the night shift that started on the 23rd
    kefu.clock.set(local("2026-11-24 10:00"))
    await kefu.say(DAY, "/handover 今天白班写的")
    stats = (await kefu.say(SUPERVISOR, "/handover_stats 昨天"))["plain"]
    assert "11-23 08:30 至 11-24 01:00" in stats and "按班次算" in stats, stats
    assert "白班 11-23：写 1" in stats and "晚班 11-23：写 1" in stats
    assert "合计：写 2 " in stats, stats  # today's day-shift item is not counted
