"""Reminder rules without a database: shop overrides, the night gap, why a reminder is over."""

import pytest
from pydantic import ValidationError

from bot.reminders.rules import (
    EARLY_WARNING_LEAD,
    RuleBook,
    ShopOverrideError,
    Thresholds,
    early_warning_window,
    next_gap,
    parse_shop_overrides,
    resolution_reason,
)
from bot.settings import Settings
from bot.shifts import parse_shifts
from tests.conftest import SHANGHAI, local

SHIFTS = parse_shifts("day=08:30-17:30;night=17:30-01:00")


# --- KEFU_SHOP_OVERRIDES --------------------------------------------------------------------------


def test_overrides_fill_missing_keys_from_defaults():
    parsed = parse_shop_overrides("店铺A:unpaid=6,warn=18,unshipped=24;店铺B:unpaid=8")
    assert parsed == {
        "店铺A": Thresholds(unpaid=6, warn=18, unshipped=24),
        "店铺B": Thresholds(unpaid=8, warn=36, unshipped=48),
    }


def test_overrides_accept_full_width_punctuation_and_spaces():
    parsed = parse_shop_overrides(" 旗舰店：unshipped=24， warn = 18 ；小店:unpaid=1.5; ")
    assert parsed["旗舰店"] == Thresholds(12, 18, 24)
    assert parsed["小店"].unpaid == 1.5


def test_empty_overrides():
    assert parse_shop_overrides("") == {}
    assert parse_shop_overrides(" ; ") == {}


@pytest.mark.parametrize(
    "text, code",
    [
        ("店铺A unpaid=6", "no_colon"),
        (":unpaid=6", "no_shop"),
        ("店铺A:unpaid=6;店铺A:warn=20", "duplicate_shop"),
        ("店铺A:paid=6", "bad_key"),
        ("店铺A:unpaid", "bad_key"),
        ("店铺A:", "no_values"),
        ("店铺A:unpaid=six", "bad_hours"),
        ("店铺A:unpaid=0", "bad_hours"),
        ("店铺A:unpaid=-3", "bad_hours"),
        ("店铺A:unpaid=nan", "bad_hours"),
        ("店铺A:unpaid=1000", "bad_hours"),
        ("店铺A:warn=48", "warn_not_before_breach"),
        ("店铺A:unshipped=30", "warn_not_before_breach"),
    ],
)
def test_bad_overrides_are_refused_with_the_reason(text, code):
    with pytest.raises(ShopOverrideError) as caught:
        parse_shop_overrides(text)
    assert caught.value.code == code
    message = caught.value.message()
    assert "KEFU_SHOP_OVERRIDES" in message and "店铺" in message


def test_settings_refuse_bad_overrides_with_a_chinese_message(tmp_path):
    with pytest.raises(ValidationError) as caught:
        Settings(kefu_db_path=tmp_path / "k.db", kefu_shop_overrides="旗舰店:unpaid=abc")
    assert "unpaid=abc 不是有效的小时数" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        Settings(kefu_db_path=tmp_path / "k.db", kefu_unshipped_warn_hours=50)
    assert "KEFU_UNSHIPPED_WARN_HOURS=50 必须小于" in str(caught.value)
    # overrides are checked against the configured defaults, not the built-in ones
    with pytest.raises(ValidationError):
        Settings(kefu_db_path=tmp_path / "k.db", kefu_unshipped_remind_hours=30, kefu_shop_overrides="A:unpaid=3")
    ok = Settings(kefu_db_path=tmp_path / "k.db", kefu_shop_overrides="A:warn=10,unshipped=20")
    assert RuleBook.from_settings(ok).thresholds_for("A") == Thresholds(12, 10, 20)
    assert RuleBook.from_settings(ok).thresholds_for("B") == Thresholds(12, 36, 48)


def test_load_settings_raises_and_the_cli_exits_2_naming_the_setting(monkeypatch, capsys, tmp_path):
    from bot.cli import main
    from bot.settings import SettingsError, load_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEFU_SHOP_OVERRIDES", "旗舰店:unpaid=6,warn=50")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.setting == "KEFU_SHOP_OVERRIDES" and "warn=50" in caught.value.message
    assert main(["db", "migrate"]) == 2
    err = capsys.readouterr().err
    assert "KEFU_SHOP_OVERRIDES" in err and "warn=50" in err and "必须早于" in err
    assert not (tmp_path / "data").exists()  # nothing was created before the refusal


# --- the night gap --------------------------------------------------------------------------------


def test_next_gap_from_the_day_shift_is_tonight():
    gap = next_gap(SHIFTS, local("2026-11-23 10:00"), SHANGHAI)
    assert (gap.start, gap.end) == (local("2026-11-24 01:00"), local("2026-11-24 08:30"))


def test_next_gap_from_the_small_hours_of_the_night_shift():
    gap = next_gap(SHIFTS, local("2026-11-24 00:30"), SHANGHAI)
    assert (gap.start, gap.end) == (local("2026-11-24 01:00"), local("2026-11-24 08:30"))


def test_inside_the_gap_it_is_the_current_gap():
    gap = next_gap(SHIFTS, local("2026-11-24 03:00"), SHANGHAI)
    assert (gap.start, gap.end) == (local("2026-11-24 01:00"), local("2026-11-24 08:30"))


def test_round_the_clock_shifts_have_no_gap():
    shifts = parse_shifts("a=08:00-20:00;b=20:00-08:00")
    assert next_gap(shifts, local("2026-11-24 03:00"), SHANGHAI) is None


def test_early_warning_window_opens_one_lead_before_the_gap():
    book = RuleBook(Thresholds(), {}, SHIFTS, SHANGHAI)
    opens = local("2026-11-24 01:00") - EARLY_WARNING_LEAD
    assert early_warning_window(book, opens.replace(second=0) - EARLY_WARNING_LEAD / 60) is None
    assert early_warning_window(book, opens) is not None
    assert early_warning_window(book, local("2026-11-24 04:00")) is not None
    assert early_warning_window(book, local("2026-11-24 08:30")) is None
    assert early_warning_window(book, local("2026-11-23 20:00")) is None


# --- why an open reminder is over -----------------------------------------------------------------


@pytest.mark.parametrize(
    "rule, status, refunding, presale, reason",
    [
        ("unpaid", "unpaid", False, False, None),
        ("unpaid", "paid_unshipped", False, False, "paid"),
        ("unpaid", "shipped", False, False, "paid"),
        ("unpaid", "closed", False, False, "closed"),
        ("unshipped", "paid_unshipped", False, False, None),
        ("unshipped", "partially_shipped", False, False, None),
        ("unshipped", "shipped", False, False, "shipped"),
        ("unshipped", "completed", False, False, "shipped"),
        ("unshipped", "closed", True, False, "closed"),
        ("unshipped", "paid_unshipped", True, False, "refunding"),
        ("unshipped", "paid_unshipped", False, True, "presale"),
    ],
)
def test_resolution_reason(rule, status, refunding, presale, reason):
    assert resolution_reason(rule, status, refunding, presale) == reason
