"""Issue 16, "dates shown twice on one line": a day of real use through the real bot (reminder
cards and digests, the order card with its reminder history, handover cards, the digest, take
over, /handovers, the item's record, /handover_stats, a one-off schedule's preview), then every
message in every chat is scanned: no line may show the same date twice ("白班 11-23 · 11-23
16:00", "11-23 18:00 到期：11-23 18:01 已推送", "2026-12-01 09:00（一次），下次 2026-12-01 09:00")."""

import re
from datetime import timedelta

from bot.people import Role
from tests.conftest import local
from tests.reminder_orders import changed, paid, save

DAY, NIGHT, SUP = 2001, 2003, 2002
H = timedelta(hours=1)

#: A date as the bot writes one: 11-23, 2026-11-23 (also with / or .), 11月23日.
DATE = re.compile(
    r"(?<![\d-])(?:(?:19|20)\d{2}[-/.])?(0?[1-9]|1[0-2])[-/.](0?[1-9]|[12]\d|3[01])(?![\d-])"
    r"|(?<!\d)(0?[1-9]|1[0-2])月(0?[1-9]|[12]\d|3[01])日"
)


def repeated_dates(text: str) -> list[str]:
    """The lines of `text` that name one calendar day twice."""
    found = []
    for line in text.splitlines():
        days = [(int(m[1] or m[3]), int(m[2] or m[4])) for m in DATE.finditer(line)]
        if len(days) != len(set(days)):
            found.append(line)
    return found


def test_the_detector_sees_each_form():
    assert repeated_dates("✍️ 小美 · 白班 11-23 · 11-23 16:00") != []
    assert repeated_dates("时间：2026-12-01 09:00（一次），下次 2026-12-01 09:00") != []
    assert repeated_dates("11月23日 上新，11-23 开始") != []
    assert repeated_dates("付款 11-23 09:00 · 发货时限 11-25 09:00\n11-23 再看") == []
    assert repeated_dates("客服电话 400-000-0000，订单 3912345678901234567") == []


async def test_no_line_shows_the_same_date_twice(kefu):
    await kefu.say(1000, "/start")
    await kefu.add_person(DAY, Role.AGENT, shift="day", name="小美")
    await kefu.add_person(NIGHT, Role.AGENT, shift="night", name="阿强")
    await kefu.add_person(SUP, Role.SUPERVISOR, shift=None, name="李主管")
    kefu.clock.set(local("2026-11-23 10:00"))
    now = kefu.clock.now()
    # reminders: breached, due today (promised the same day it was paid) and unpaid orders
    await save(kefu.svc.db, kefu.clock,
               paid(now - 50 * H, order_no="3900000000000000001"),
               changed(paid(now - 1 * H, order_no="3900000000000000002", platform="douyin"), ship_by=now + 3 * H),
               changed(paid(now - 47 * H, order_no="3900000000000000003"), status="paid_unshipped"))
    await kefu.tick()
    for moment in ("2026-11-23 12:00", "2026-11-23 13:30", "2026-11-23 16:00"):
        kefu.clock.set(local(moment))
        await kefu.tick()
    for order_no in ("3900000000000000001", "3900000000000000002", "3900000000000000003"):
        await kefu.say(DAY, f"/order {order_no}")
    await kefu.say(DAY, "/reminders")

    # handover: written in the day shift, handed over at 17:30, taken, resolved, listed, counted
    logged = await kefu.say(DAY, "/handover 买家等回复颜色 3900000000000000001")
    await kefu.say(DAY, "/handover 快递单号对不上，等快递回复")
    kefu.clock.set(local("2026-11-23 17:30"))
    await kefu.tick()
    card = next(m for m in kefu.emu.messages(NIGHT) if "ho:take:1" in str(m.get("reply_markup")))
    kefu.clock.set(local("2026-11-23 17:40"))
    await kefu.press(NIGHT, card, data="ho:take:1")
    await kefu.say(NIGHT, "/handovers")
    await kefu.say(SUP, "/handovers")
    await kefu.press(NIGHT, card, data="ho:view:1")
    kefu.clock.set(local("2026-11-24 00:20"))  # the night shift, after midnight
    await kefu.say(NIGHT, "/handover 夜里买家催发货")
    await kefu.press(NIGHT, card, data="ho:res:1")
    await kefu.say(NIGHT, "不写了，已回复买家")
    await kefu.say(NIGHT, "/handovers 颜色")
    await kefu.say(SUP, "/handover_stats 今天")
    await kefu.say(SUP, "/handover_stats 昨天")
    await kefu.say(SUP, "/handover_stats")
    await kefu.press(DAY, logged, data="ho:view:1")

    await kefu.say(SUP, "/kpi 2026-11-23")  # a one-day period, its previous one too
    await kefu.say(SUP, "/kpi 7")

    # a one-off schedule's preview
    kefu.clock.set(local("2026-11-24 10:00"))
    panel = await kefu.say(SUP, "/schedule 2026-12-01 09:00 双十二预热开始")
    draft = next(d["callback_data"] for row in panel["reply_markup"]["inline_keyboard"] for d in row
                 if d["callback_data"].startswith("bc:"))
    await kefu.press(SUP, panel, data=f"bc:{draft.split(':')[1]}:qk")

    seen = {chat: [m["plain"] + "\n" + (m.get("caption") or "") for m in kefu.emu.messages(chat)]
            for chat in (1000, DAY, NIGHT, SUP)}
    assert sum(len(texts) for texts in seen.values()) > 30  # the day really happened
    for needle in ("发货时限", "交接本", "已接手", "交接统计", "预览定时通知", "提醒记录", "服务指标"):
        assert any(needle in text for texts in seen.values() for text in texts), needle
    doubled = [(chat, line) for chat, texts in seen.items() for text in texts for line in repeated_dates(text)]
    assert doubled == [], "\n".join(f"{chat}: {line}" for chat, line in doubled)


def test_a_one_day_kpi_period_is_written_once():
    """The report file's caption and the chart's title (sent only on request) name one day once."""
    from zoneinfo import ZoneInfo

    from bot.render import Renderer

    renderer = Renderer(ZoneInfo("Asia/Shanghai"))
    for key in ("kpi.files.caption", "kpi.chart.report_title"):
        assert repeated_dates(renderer.label(key, first="2026-11-22", last="2026-11-22")) == [], key
        assert "2026-11-16 ~ 2026-11-22" in renderer.label(key, first="2026-11-16", last="2026-11-22")
