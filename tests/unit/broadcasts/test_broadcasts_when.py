"""Schedule rules: parsing Chinese, English and ISO forms, next run in the shop's zone (week
boundaries included), and catching up after downtime with the grace period."""

from datetime import date, timedelta

import pytest

from bot.broadcasts.when import Rule, WhenWords, due_occurrences, next_run, parse_when
from bot.people import UserError
from bot.render import Renderer
from tests.conftest import SHANGHAI, local

WORDS = WhenWords.from_labels(Renderer(SHANGHAI).labels["broadcast"]["when"])
NOW = local("2026-11-23 10:00")  # Monday


def parse(text, now=NOW):
    return parse_when(text, now, SHANGHAI, WORDS)


@pytest.mark.parametrize("text, rule, rest", [
    ("每周一 08:00 例会", Rule("weekly", 8, 0, (0,)), "例会"),
    ("每天 17:20 交班提醒", Rule("daily", 17, 20), "交班提醒"),
    ("每日17:20交班", Rule("daily", 17, 20), "交班"),
    ("每周一三五 9点半 早会", Rule("weekly", 9, 30, (0, 2, 4)), "早会"),
    ("每周一、周三 08：00：例会", Rule("weekly", 8, 0, (0, 2)), "例会"),
    ("每周一至周五 下午3点 巡店", Rule("weekly", 15, 0, (0, 1, 2, 3, 4)), "巡店"),
    ("每星期日 20点15分 写周报", Rule("weekly", 20, 15, (6,)), "写周报"),
    ("工作日 09:00 打卡", Rule("weekly", 9, 0, (0, 1, 2, 3, 4)), "打卡"),
    ("every monday 08:00 weekly meeting", Rule("weekly", 8, 0, (0,)), "weekly meeting"),
    ("every mon, wed at 8:30 standup", Rule("weekly", 8, 30, (0, 2)), "standup"),
    ("daily 17:20 handover", Rule("daily", 17, 20), "handover"),
    ("2026-12-01 09:00 上新", Rule("once", 9, 0, on=date(2026, 12, 1)), "上新"),
    ("2026/12/01T09:00 上新", Rule("once", 9, 0, on=date(2026, 12, 1)), "上新"),
    ("12月1日 9:00 上新", Rule("once", 9, 0, on=date(2026, 12, 1)), "上新"),
    ("2027年1月2日 10点 新年", Rule("once", 10, 0, on=date(2027, 1, 2)), "新年"),
    ("11-01 09:00 明年的", Rule("once", 9, 0, on=date(2027, 11, 1)), "明年的"),  # passed this year: next year
    ("明天9点开会", Rule("once", 9, 0, on=date(2026, 11, 24)), "开会"),
    ("今天 18:00 盘点", Rule("once", 18, 0, on=date(2026, 11, 23)), "盘点"),
    ("tomorrow 9:00 hi", Rule("once", 9, 0, on=date(2026, 11, 24)), "hi"),
    ("每周一 08:00", Rule("weekly", 8, 0, (0,)), ""),
])
def test_parse_forms(text, rule, rest):
    assert parse(text) == (rule, rest)


@pytest.mark.parametrize("text, code", [
    ("明天 25:00 x", "bad_time"),
    ("每天 8:61 x", "bad_time"),
    ("2026-02-30 09:00 x", "bad_date"),
    ("2026-11-23 09:59 已经过了", "when_past"),
    ("今天 10:00 正好现在", "when_past"),
    ("周一 08:00 没有每字", "when_missing"),
    ("下周 开会", "when_missing"),
    ("hello", "when_missing"),
])
def test_parse_errors(text, code):
    with pytest.raises(UserError) as caught:
        parse(text)
    assert caught.value.code == code


@pytest.mark.parametrize("rule", [
    Rule("weekly", 8, 0, (0, 2)), Rule("daily", 17, 20), Rule("once", 9, 5, on=date(2026, 12, 1)),
])
def test_rules_round_trip_through_their_encoding(rule):
    assert Rule.decode(rule.encode()) == rule


def test_weekly_next_run_crosses_the_week_boundary():
    monday_8 = Rule("weekly", 8, 0, (0,))
    assert next_run(monday_8, local("2026-11-29 23:59"), SHANGHAI) == local("2026-11-30 08:00")  # Sunday night
    assert next_run(monday_8, local("2026-11-23 07:59"), SHANGHAI) == local("2026-11-23 08:00")
    assert next_run(monday_8, local("2026-11-23 08:00"), SHANGHAI) == local("2026-11-30 08:00")  # strictly after
    friday_sunday = Rule("weekly", 20, 0, (4, 6))
    assert next_run(friday_sunday, local("2026-11-27 20:00"), SHANGHAI) == local("2026-11-29 20:00")
    assert next_run(friday_sunday, local("2026-11-29 20:30"), SHANGHAI) == local("2026-12-04 20:00")
    # across a month and a year end
    assert next_run(Rule("daily", 0, 30), local("2026-12-31 23:00"), SHANGHAI) == local("2027-01-01 00:30")


def test_next_run_is_local_wall_clock_time():
    found = next_run(Rule("daily", 8, 0), local("2026-11-23 10:00"), SHANGHAI)
    assert found.astimezone(SHANGHAI).hour == 8 and found.utcoffset() == timedelta(hours=8)


def test_one_off_runs_once():
    once = Rule("once", 9, 0, on=date(2026, 12, 1))
    assert next_run(once, NOW, SHANGHAI) == local("2026-12-01 09:00")
    assert next_run(once, local("2026-12-01 09:00"), SHANGHAI) is None


def test_nothing_due_before_the_time():
    assert due_occurrences(Rule("daily", 8, 0), local("2026-11-24 08:00"), local("2026-11-24 07:59"), SHANGHAI) is None


def test_due_on_time_fires_and_moves_on():
    due = due_occurrences(Rule("weekly", 8, 0, (0,)), local("2026-11-23 08:00"), local("2026-11-23 08:01"), SHANGHAI)
    assert due.fire_at == local("2026-11-23 08:00") and due.missed == () and due.next_run == local("2026-11-30 08:00")


def test_grace_period_boundary():
    rule, scheduled = Rule("weekly", 8, 0, (0,)), local("2026-11-23 08:00")
    grace = timedelta(minutes=30)
    inside = due_occurrences(rule, scheduled, local("2026-11-23 08:30"), SHANGHAI, grace)
    assert inside.fire_at == scheduled and inside.missed == ()
    outside = due_occurrences(rule, scheduled, local("2026-11-23 08:31"), SHANGHAI, grace)
    assert outside.fire_at is None and outside.missed == (scheduled,) and outside.next_run == local("2026-11-30 08:00")


def test_long_downtime_sends_at_most_the_latest_and_reports_the_rest():
    rule = Rule("daily", 9, 0)
    due = due_occurrences(rule, local("2026-11-20 09:00"), local("2026-11-23 09:10"), SHANGHAI)
    assert due.fire_at == local("2026-11-23 09:00")
    assert due.missed == (local("2026-11-20 09:00"), local("2026-11-21 09:00"), local("2026-11-22 09:00"))
    assert due.next_run == local("2026-11-24 09:00")
    years = due_occurrences(rule, local("2024-01-01 09:00"), local("2026-11-23 12:00"), SHANGHAI)
    assert years.fire_at is None and years.next_run == local("2026-11-24 09:00")


def test_missed_one_off_finishes():
    once = Rule("once", 9, 0, on=date(2026, 11, 23))
    due = due_occurrences(once, local("2026-11-23 09:00"), local("2026-11-23 12:00"), SHANGHAI)
    assert due.fire_at is None and due.missed == (local("2026-11-23 09:00"),) and due.next_run is None


@pytest.mark.parametrize("text, rule, rest", [
    ("下周一 9:00 例会", Rule("once", 9, 0, on=date(2026, 11, 30)), "例会"),
    ("下星期三 下午3点 培训", Rule("once", 15, 0, on=date(2026, 12, 2)), "培训"),
    ("本周五 18:00 盘点", Rule("once", 18, 0, on=date(2026, 11, 27)), "盘点"),
    ("这周日 10点 上新", Rule("once", 10, 0, on=date(2026, 11, 29)), "上新"),
    ("今晚 8点 直播", Rule("once", 20, 0, on=date(2026, 11, 23)), "直播"),
    ("今晚 21:30 直播", Rule("once", 21, 30, on=date(2026, 11, 23)), "直播"),
    ("明早 9:00 早会", Rule("once", 9, 0, on=date(2026, 11, 24)), "早会"),
    ("明晚 8点 复盘", Rule("once", 20, 0, on=date(2026, 11, 24)), "复盘"),
    ("后天 9:00 开会", Rule("once", 9, 0, on=date(2026, 11, 25)), "开会"),
    ("14:00 开会", Rule("once", 14, 0, on=date(2026, 11, 23)), "开会"),  # later today
    ("9:00 开会", Rule("once", 9, 0, on=date(2026, 11, 24)), "开会"),  # earlier today: tomorrow
])
def test_common_spoken_dates(text, rule, rest):
    assert parse(text) == (rule, rest)


def test_a_time_earlier_today_says_how_to_mean_tomorrow():
    with pytest.raises(UserError) as caught:
        parse("今天 9:00 开会")
    assert caught.value.code == "when_past" and caught.value.params["today"] is True
    assert caught.value.params["clock"] == "09:00" and caught.value.params["now"] == "10:00"
    with pytest.raises(UserError):
        parse("本周一 9:00 例会")  # this Monday 9:00 is over
