"""/kpi period words come from the labels (templates/labels/kpi.yaml `kpi.period_words`), not Python."""

from datetime import date

import pytest

from bot.kpi import Period, PeriodError, PeriodWords
from bot.render import Renderer
from tests.conftest import SHANGHAI

TODAY = date(2026, 11, 26)  # a Thursday


@pytest.fixture
def words() -> PeriodWords:
    return PeriodWords.from_labels(Renderer(SHANGHAI).labels["kpi"]["period_words"])


@pytest.mark.parametrize("text, first, last", [
    ("", TODAY, TODAY),
    ("今天", TODAY, TODAY),
    ("昨天", date(2026, 11, 25), date(2026, 11, 25)),
    ("本周", date(2026, 11, 23), TODAY),
    ("上周", date(2026, 11, 16), date(2026, 11, 22)),
    ("本月", date(2026, 11, 1), TODAY),
    ("上月", date(2026, 10, 1), date(2026, 10, 31)),
    (" 2026-11-02 ", date(2026, 11, 2), date(2026, 11, 2)),
    ("2026-11-02~2026-11-08", date(2026, 11, 2), date(2026, 11, 8)),
    ("2026-11-02 ～ 2026-11-08", date(2026, 11, 2), date(2026, 11, 8)),
    ("2026-11-02至2026-11-08", date(2026, 11, 2), date(2026, 11, 8)),
])
def test_named_and_dated_periods(words, text, first, last):
    assert Period.parse(text, TODAY, words) == Period(first, last)


@pytest.mark.parametrize("text", ["明天", "上上周", "2026-13-01", "2026-11-08~2026-11-02", "11-02"])
def test_bad_periods_are_refused(words, text):
    with pytest.raises(PeriodError):
        Period.parse(text, TODAY, words)


def test_the_vocabulary_is_data(words):
    """Another wording in the labels is read without touching Python."""
    custom = PeriodWords.from_labels({**Renderer(SHANGHAI).labels["kpi"]["period_words"], "yesterday": ["昨日"]})
    assert Period.parse("昨日", TODAY, custom) == Period(date(2026, 11, 25), date(2026, 11, 25))
    with pytest.raises(PeriodError):
        Period.parse("昨天", TODAY, custom)
    assert words.yesterday == ("昨天",)
