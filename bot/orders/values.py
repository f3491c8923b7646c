"""Cell cleaning and value parsing shared by every export format and the HTTP endpoint.

Status and refund wording found IN the exports lives as data in bot/orders/vocabulary.py
(matched, never shown); `WordReader` reads it for one file.
A value that cannot be read raises `RowError` with a reason code: the row is rejected and the
agent is told why. Nothing is guessed.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation

from bot.orders.model import PLATFORMS
from bot.orders.vocabulary import NONE, OPEN, SUCCESS, StatusWord, status_key, vocabulary

_BLANKS = " \t\r\n\u00a0\u3000\ufeff\u200b"
#: How the exports say "nothing here".
EMPTY_MARKERS = frozenset({"", "null", "NULL", "Null", "-", "--", "—", "#NULL!", "#N/A", "N/A", "nan", "NaN", "None"})

_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:\.\d+)?[eE][+-]?\d+$")
_DECIMAL_ID = re.compile(r"^\d+\.\d+$")
_LOCAL_TIME = re.compile(
    r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})[ T]+(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d{1,9})?)?$"
)
_TRACKING_PREFIX = re.compile(r"(?i)\bno[:：]\s*")
_ALL_SPACE = re.compile(r"\s+")


class RowError(Exception):
    """A cell that cannot be read; the whole row is rejected with this reason."""

    def __init__(self, reason_code: str, column: str = "", value: object = "") -> None:
        super().__init__(reason_code)
        self.reason_code = reason_code
        self.column = column
        self.value = "" if value is None else str(value)
        #: Set by group readers (Douyin, JD) so the rest of the order is rejected with it.
        self.order_no: str | None = None


def clean_text(value: object) -> str:
    """A cell as plain text: blanks, `="…"`, a leading `'`, and empty markers removed."""
    if value.__class__ is str:
        text = value.strip(_BLANKS)  # type: ignore[union-attr]
    elif value is None:
        return ""
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value).strip(_BLANKS)
    if not text or text in EMPTY_MARKERS:
        return ""
    first = text[0]
    if first == "=" and text.startswith('="') and text.endswith('"') and len(text) >= 3:
        text = text[2:-1].strip(_BLANKS)
    elif first == "'":
        text = text[1:].strip(_BLANKS)
    else:
        return text
    return "" if text in EMPTY_MARKERS else text


def parse_order_no(value: object, column: str) -> str:
    """The order number as a string. Excel-mangled numbers (6.9175E+18, 1234.0) are refused."""
    if isinstance(value, bool):
        raise RowError("bad_value", column, value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # A double holds 15 exact digits; longer ids have already lost theirs.
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        raise RowError("mangled_number", column, repr(value))
    text = clean_text(value)
    if text.isdigit() and text.isascii():
        return text
    text = text.strip("\"'=").strip(_BLANKS)
    if not text:
        raise RowError("missing_order_no", column)
    if _SCIENTIFIC.match(text) or _DECIMAL_ID.match(text):
        raise RowError("mangled_number", column, text)
    if _ALL_SPACE.search(text):
        raise RowError("bad_value", column, text)
    return text


class TimeParser:
    """Reads the time cells of one file: aware UTC datetimes; zone-less times are in `tz`.

    Formats: `yyyy-MM-dd HH:mm[:ss]` and ISO 8601 (with or without offset) through the C
    `fromisoformat`, Excel's `yyyy/M/d H:mm[:ss]`, and datetime cells. A bare date or an
    unformatted Excel serial number is refused (the time of day would be a guess).
    The zone's UTC offset is cached per quarter hour of local time: a million rows convert in
    well under a second, and every tz database transition falls on a quarter hour.
    """

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._offsets: dict[int, object] = {}

    def localize(self, naive: datetime) -> datetime:
        key = naive.toordinal() * 96 + naive.hour * 4 + naive.minute // 15
        offset = self._offsets.get(key)
        if offset is None:
            offset = self._offsets[key] = naive.replace(tzinfo=self.tz).utcoffset()
        u = naive - offset  # type: ignore[operator]
        # The positional constructor is 4x faster than .replace(tzinfo=...); drops microseconds.
        return datetime(u.year, u.month, u.day, u.hour, u.minute, u.second, 0, UTC)

    def __call__(self, value: object, column: str) -> datetime | None:
        if value is None:
            return None
        if value.__class__ is not str:
            return self._non_text(value, column)
        text = value.strip(_BLANKS)  # type: ignore[union-attr]
        if not text or text in EMPTY_MARKERS:
            return None
        if text[0] in "='":
            text = clean_text(text)
            if not text:
                return None
        moment = None
        if len(text) > 10 and text[4] == "-" and ":" in text:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                moment = None
        if moment is None:
            moment = self._slow(text, column)
        if moment.tzinfo is None:
            return self.localize(moment)
        moment = moment.astimezone(UTC)
        return moment.replace(microsecond=0) if moment.microsecond else moment

    def _slow(self, text: str, column: str) -> datetime:
        match = _LOCAL_TIME.match(text)
        try:
            if match:
                y, mo, d, h, mi, s = match.groups()
                return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0))
            if ":" not in text:
                raise ValueError(text)
            return datetime.fromisoformat(text)
        except ValueError:
            raise RowError("bad_time", column, text) from None

    def _non_text(self, value: object, column: str) -> datetime:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return self.localize(value)
            return value.astimezone(UTC).replace(microsecond=0)
        # a bare date, an unformatted Excel serial number, anything else
        raise RowError("bad_time", column, value)


def parse_time(value: object, tz: tzinfo, column: str) -> datetime | None:
    """One-off form of TimeParser (readers keep one parser per file for its offset cache)."""
    return TimeParser(tz)(value, column)


_CENT = Decimal("0.01")
_AMOUNT_MAX = Decimal("10000000.00")  # bot.orders.limits.AMOUNT_MAX (limits imports model only)
_PLAIN_AMOUNT = re.compile(r"^\d{1,12}(?:\.\d{1,2})?$")


def parse_amount(value: object, column: str) -> Decimal | None:
    """Money as a Decimal with two places; `元`, `¥` and thousands separators are dropped."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise RowError("bad_amount", column, value)
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        amount = Decimal(repr(value))
    else:
        text = clean_text(value)
        if not text:
            return None
        if _PLAIN_AMOUNT.match(text):
            amount = Decimal(text)
            return amount if text[-3:-2] == "." else amount.quantize(_CENT)
        text = text.replace(",", "").replace("元", "").replace("¥", "").replace("￥", "").strip()
        if "e" in text.lower():
            raise RowError("bad_amount", column, value)
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise RowError("bad_amount", column, value) from None
    # Out of range before quantize: 1e30 would overflow the decimal context (InvalidOperation).
    if not amount.is_finite() or amount < 0:
        raise RowError("bad_amount", column, value)
    if amount > _AMOUNT_MAX:
        error = RowError("out_of_range", column, value)
        error.limit = f"0-{_AMOUNT_MAX}"
        raise error
    if amount != amount.quantize(_CENT):
        raise RowError("bad_amount", column, value)
    return amount.quantize(_CENT)


class WordReader:
    """Reads the status and refund cells of one file against the platform's vocabulary
    (bot/orders/vocabulary.py). A word not in it is never guessed and never rejects the row: the
    caller takes the conservative reading, and the word is counted in `unknown` under
    (column, word) for the import summary."""

    def __init__(self, platform: str | None, unknown: Counter | None = None) -> None:
        self.vocab = vocabulary(platform)
        self.unknown: Counter = Counter() if unknown is None else unknown
        self._status: dict[str, StatusWord | None] = {}
        self._refund: dict[str, str | None] = {}

    def status(self, raw: str, column: str) -> StatusWord | None:
        try:
            word = self._status[raw]
        except KeyError:
            word = self.vocab.status_word(raw) if raw else None
            if len(self._status) < 10_000:
                self._status[raw] = word
        if word is None:
            self.unknown[(column, raw)] += 1
        return word

    def refund(self, value: object, column: str) -> str | None:
        """OPEN / NONE / SUCCESS, or None for an empty cell or an unknown word (counted)."""
        raw = clean_text(value)
        if not raw:
            return None
        try:
            reading = self._refund[raw]
        except KeyError:
            reading = self.vocab.refund_word(raw)
            if len(self._refund) < 10_000:
                self._refund[raw] = reading
        if reading is None:
            self.unknown[(column, raw)] += 1
        return reading


def after_sale_open(value: object, words: WordReader, column: str) -> bool:
    """True only when a 售后状态/退款状态 cell says a refund or after-sale is pending or in progress."""
    return words.refund(value, column) == OPEN


def parse_status(raw: str, column: str) -> str:
    """The canonical status of a known status word or code; RowError for anything else (used
    where a caller must have a known status, e.g. tests and demo data)."""
    word = vocabulary(None).status_word(raw) if raw else None
    if word is None:
        raise RowError("unknown_status", column, raw)
    return word.state


_ZERO = frozenset({"0", "0.0", "0.00", "0元", "0.00元"})


def refund_amount_open(value: object, column: str, words: WordReader | None = None) -> bool:
    """退款金额 > 0 means a refund exists; 千牛 and ERPs write words instead (无退款申请, 退款关闭,
    退款中): those are read like a 退款状态 cell (only pending/in progress is open). A word not in
    the vocabulary is counted by `words` and read as no open refund (the conservative reading)."""
    text = clean_text(value)
    if not text or text in _ZERO:
        return False
    if not text[0].isdigit() and text[0] not in "¥￥":
        if words is not None:
            return words.refund(text, column) == OPEN
        return vocabulary(None).refund_word(text) == OPEN
    return bool(parse_amount(text, column))


_YES = frozenset({"1", "true", "yes", "y", "是", "t"})
_NO = frozenset({"0", "false", "no", "n", "否", "f", ""})


def parse_flag(value: object, column: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = clean_text(value).lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    raise RowError("bad_flag", column, value)


_PLATFORM_ALIASES = {
    **{p: p for p in PLATFORMS},
    "tmall": "taobao", "淘宝": "taobao", "天猫": "taobao", "淘宝/天猫": "taobao", "千牛": "taobao",
    "抖音": "douyin", "抖店": "douyin", "tiktok": "douyin",
    "pdd": "pinduoduo", "拼多多": "pinduoduo",
    "京东": "jd", "jingdong": "jd",
    "其他": "other",
}


def parse_platform(value: object, column: str, default: str | None) -> str:
    text = clean_text(value)
    if not text:
        if default is None:
            raise RowError("unknown_platform", column, "")
        return default
    platform = _PLATFORM_ALIASES.get(status_key(text))
    if platform is None:
        raise RowError("unknown_platform", column, text)
    return platform


def tracking_number(value: object) -> str:
    """物流单号 without the `No:` prefix Taobao puts in front of each number."""
    text = clean_text(value)
    if ":" not in text and "：" not in text:
        return text
    return _TRACKING_PREFIX.sub("", text).strip(_BLANKS)




_PARCELS = re.compile(r"[;；|\n]+")
_EXPRESS = re.compile(r"^(?P<carrier>.*?)[\s:：,，/#-]*(?P<number>[A-Za-z]{0,4}\d[0-9A-Za-z-]{5,})$")


def split_express(value: object) -> tuple[str, str]:
    """抖店 `快递信息` (carrier and number in one cell, one parcel per `;`) → (carriers, numbers),
    each joined with `,` like merged item rows: `中通快递 7531234567890` → (中通快递, 7531234567890).
    A cell without a number is all carrier; a bare number has no carrier."""
    carriers, numbers = [], []
    for parcel in _PARCELS.split(clean_text(value)):
        parcel = tracking_number(parcel.strip(_BLANKS))
        if not parcel:
            continue
        match = _EXPRESS.match(parcel)
        if match:
            carrier, number = match.group("carrier").strip(_BLANKS + ":：,，-"), match.group("number")
        else:
            carrier, number = parcel, ""
        if carrier and carrier not in carriers:
            carriers.append(carrier)
        if number and number not in numbers:
            numbers.append(number)
    return ",".join(carriers), ",".join(numbers)
