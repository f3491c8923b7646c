"""The export formats: how each is recognised from its header row and how a row becomes an order.

Columns are found BY NAME through alias tables (sellers choose and reorder columns in the newer
exports), never by position. Header names are compared after `normalize_header`, which removes
what Excel and the back-ends add around them: trailing and full-width spaces, NBSP, a BOM,
`=`, quotes and line breaks. See /work/shared/domain/order-exports.md for the sources.

Generic CSV (anything else, e.g. an ERP export), UTF-8 or GBK, header names case-insensitive:
    platform, order_no, shop, status, created_at, paid_at, shipped_at, amount, buyer
  optional: status_raw, refunding, presale, item_title, tracking_no, carrier, on_hold, ship_from, ship_by
- order_no and status are required; a blank platform uses --platform (else `other`); platform
  also accepts tmall/淘宝/天猫/抖音/抖店/pdd/拼多多/京东.
- status: unpaid, paid_unshipped, partially_shipped, shipped, completed, closed, or any status
  wording the platform readers know (交易成功, 待发货, 等待出库, WAIT_SELLER_SEND_GOODS, …: the
  tables in bot/orders/vocabulary.py). Unknown wording is kept with the row, read from the
  order's own times (paid and not shipped → paid_unshipped) and counted for the import summary.
- ship_by: the order's own shipping deadline; ship_from: when the shipping clock starts instead
  of paid_at; on_hold (1/0): the platform holds the order (no shipping reminder).
- times: ISO 8601; with an offset or Z they are taken as given, without one they are in the
  shop's zone (KEFU_TIMEZONE). `yyyy/M/d H:mm` is accepted too. A bare date is refused.
- amount: a decimal with at most two places (thousands separators, 元 and ¥ allowed).
- refunding / presale: 1/0, true/false, yes/no, 是/否 (empty = 0).
The HTTP endpoint takes the same fields as JSON items.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from operator import itemgetter

from bot.orders.model import NormalizedOrder
from bot.orders.values import (
    RowError,
    TimeParser,
    WordReader,
    clean_text,
    parse_amount,
    parse_flag,
    parse_order_no,
    parse_platform,
    refund_amount_open,
    split_express,
    tracking_number,
)
from bot.orders.vocabulary import OPEN, StatusWord, infer_state
from bot.render import mask_phone

_HEADER_NOISE = re.compile(r"[\s=\"'\ufeff\u200b]")


def normalize_header(cell: object) -> str:
    """订单付款时间␠ / ＝"订单编号" / 商品总价（元） → 订单付款时间 / 订单编号 / 商品总价(元)."""
    if cell is None:
        return ""
    return _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", str(cell)))


@dataclass
class ReadContext:
    """What row readers need besides the row: the shop's zone and the caller's defaults."""

    tz: tzinfo
    shop: str = ""
    platform: str | None = None
    #: Status and refund words not in the vocabulary: (column, word) → rows (for the summary).
    unknown: Counter = field(default_factory=Counter)


class Columns:
    """Where each field sits in this file: the first alias present in the header wins.

    Rows are padded to `width + 1` cells by the reader; a field the file lacks points at the
    last, always-empty cell, so row readers index without checks.
    """

    def __init__(self, header: Sequence[str], aliases: dict[str, tuple[str, ...]], *, lower: bool = False) -> None:
        position: dict[str, int] = {}
        for i, name in enumerate(header):
            position.setdefault(name.lower() if lower else name, i)
        self.width = len(header)
        self.index: dict[str, int] = {}
        self.names: dict[str, str] = {}
        for canonical, options in aliases.items():
            for option in options:
                if option in position:
                    self.index[canonical] = position[option]
                    self.names[canonical] = header[position[option]]
                    break

    def __contains__(self, canonical: str) -> bool:
        return canonical in self.index

    def at(self, canonical: str) -> int:
        return self.index.get(canonical, self.width)

    def name(self, canonical: str) -> str:
        return self.names.get(canonical, canonical)

    def pad(self, cells: list) -> list:
        """The row with exactly `width` cells plus the empty one absent fields point at."""
        if len(cells) != self.width:
            cells = cells[: self.width] + [None] * (self.width - len(cells))
        cells.append(None)
        return cells


RowReader = Callable[[list], "NormalizedOrder | None"]
#: Builds the row reader for one file: column positions and names are looked up once.
RowReaderFactory = Callable[[Columns, ReadContext], RowReader]


@dataclass
class ExportFormat:
    name: str  # stored as orders.source
    platform: str | None  # None: the rows say (generic CSV)
    aliases: dict[str, tuple[str, ...]]
    row_reader: RowReaderFactory
    #: Formats with one row per item: rows sharing an order number are merged into one order.
    group_by_order: bool = False
    amount_rule: str = "first"  # "sum" when each item row carries its own amount
    lower_headers: bool = False
    required: tuple[str, ...] = ("order_no", "status")


class Fields:
    """Positions and display names of the fields a row reader uses, bound once per file."""

    def __init__(self, cols: Columns, names: Sequence[str]) -> None:
        self.present = {name for name in names if name in cols}
        for name in names:
            setattr(self, name, cols.at(name))
            setattr(self, f"{name}_name", cols.name(name))


_NO_WORDS = frozenset({"", "否", "0", "false", "no", "n", "非预售"})


def _says_yes(value: object) -> bool:
    """A yes/no column such as 预售订单 (是/否); anything but a "no" counts as yes."""
    return clean_text(value).lower() not in _NO_WORDS


def _buyer(nickname: object, phone: object) -> str:
    """The buyer's nickname; a masked phone only when there is nothing else. Never a full phone."""
    name = clean_text(nickname)
    if name:
        return mask_phone(name) if name[0].isdigit() or name[0] == "+" else name
    number = clean_text(phone)
    if not number:
        return ""
    masked = mask_phone(number)
    return masked if masked != number or "*" in number else ""


def _with_order_no(order_no: str, build: Callable[[], NormalizedOrder]) -> NormalizedOrder:
    """Run `build`, tagging a failure with the order number so the whole order can be rejected."""
    try:
        return build()
    except RowError as error:
        error.order_no = order_no
        raise


def _state(word: StatusWord | None, paid: object, shipped: object, tracking: str) -> str:
    """The canonical state: the word's, or for an unknown word the conservative reading from the
    order's own times (paid and not shipped → paid_unshipped, so it is reminded)."""
    if word is not None:
        return word.state
    return infer_state(paid is not None, shipped is not None or bool(tracking))


def _order_from_cells(
    c: list, f: Fields, time: TimeParser, words: WordReader, platform: str, order_no: str, default_shop: str,
    status_raw: str, refunding: bool,
) -> NormalizedOrder:
    """The order of a Douyin or JD row: same fields, presale read from 订单类型; only how a refund
    shows differs (the caller's `refunding`). Failures are tagged with the order number."""

    def build() -> NormalizedOrder:
        word = words.status(status_raw, f.status_name)
        paid, shipped = time(c[f.paid_at], f.paid_at_name), time(c[f.shipped_at], f.shipped_at_name)
        tracking, carrier = tracking_number(c[f.tracking_no]), clean_text(c[f.carrier])
        if not tracking and "express" in f.present:
            carrier, tracking = split_express(c[f.express])
        return NormalizedOrder(
            platform=platform,
            order_no=order_no,
            shop=clean_text(c[f.shop]) or default_shop,
            status=_state(word, paid, shipped, tracking),
            status_raw=status_raw,
            refunding=refunding or (word is not None and word.refund == OPEN),
            presale="预售" in clean_text(c[f.order_type]),
            created_at=time(c[f.created_at], f.created_at_name),
            paid_at=paid,
            shipped_at=shipped,
            amount=parse_amount(c[f.amount], f.amount_name),
            buyer=_buyer(c[f.buyer], c[f.phone]),
            item_title=clean_text(c[f.item_title]),
            tracking_no=tracking,
            carrier=carrier,
            on_hold=word is not None and word.hold,
            ship_by=time(c[f.ship_by], f.ship_by_name),
        )

    return _with_order_no(order_no, build)


# --- Taobao / Tmall: legacy 订单报表 CSV and the 千牛 order sheet ---------------------------------

TAOBAO_ALIASES = {
    "order_no": ("订单编号", "主订单编号"),
    "shop": ("店铺名称", "分销商店铺名称"),
    "status": ("订单状态",),
    "created_at": ("订单创建时间",),
    "paid_at": ("订单付款时间", "付款时间"),
    "shipped_at": ("发货时间",),
    # 支付金额: third-party systems emitting the 订单报表 layout (order-exports.md §0)
    "amount": ("买家实际支付金额", "买家实付金额", "实付金额", "支付金额", "总金额"),
    "buyer": ("买家会员名", "买家昵称"),
    "phone": ("联系手机", "买家手机号", "联系电话"),
    "item_title": ("宝贝标题", "商品标题"),
    "tracking_no": ("物流单号",),
    "carrier": ("物流公司",),
    "refund_amount": ("退款金额",),
    "stage_info": ("分阶段订单信息",),
    "presale_flag": ("预售订单",),
    # Read by meaning, kept for the rejected-rows CSV and detection; never stored (personal data /
    # not needed): the recipient, the shop's id.
    "recipient": ("收货人姓名", "收货人"),
    "shop_id": ("店铺Id", "分销商Id"),
}


def taobao_rows(cols: Columns, ctx: ReadContext) -> RowReader:
    # The hot path of a million-row legacy export: the cells are picked in one C call, column
    # names are closure locals and the order is built with positional arguments (2x faster).
    pick = itemgetter(*(cols.at(name) for name in TAOBAO_ALIASES))
    names = {name: cols.name(name) for name in TAOBAO_ALIASES}
    order_no_name, status_name, amount_name = names["order_no"], names["status"], names["amount"]
    created_name, paid_name, shipped_name = names["created_at"], names["paid_at"], names["shipped_at"]
    refund_name = names["refund_amount"]
    time, default_shop, has_presale_flag = TimeParser(ctx.tz), ctx.shop, "presale_flag" in cols
    words = WordReader("taobao", ctx.unknown)
    status_of = words.status

    def read(c: list) -> NormalizedOrder:
        (order_no, shop, status_raw, created, paid, shipped, amount, buyer, phone, title, tracking,
         carrier, refund, stage_info, presale_flag, _recipient, _shop_id) = pick(c)  # TAOBAO_ALIASES order
        order_no = parse_order_no(order_no, order_no_name)
        status_raw = clean_text(status_raw)
        word = status_of(status_raw, status_name)
        paid, shipped, tracking = time(paid, paid_name), time(shipped, shipped_name), tracking_number(tracking)
        return NormalizedOrder(
            "taobao",
            order_no,
            clean_text(shop) or default_shop,
            word.state if word is not None else _state(None, paid, shipped, tracking),
            status_raw,
            refund_amount_open(refund, refund_name, words) or (word is not None and word.refund == OPEN),  # refunding
            bool(clean_text(stage_info)) or (has_presale_flag and _says_yes(presale_flag)),  # presale
            time(created, created_name),
            paid,
            shipped,
            parse_amount(amount, amount_name),
            _buyer(buyer, phone),
            clean_text(title),
            tracking,
            clean_text(carrier),
            word is not None and word.hold,  # on_hold
        )

    return read


# --- Douyin 抖店: one row per 子订单 --------------------------------------------------------------

DOUYIN_ALIASES = {
    "order_no": ("主订单编号",),
    "sub_order_no": ("子订单编号",),
    "shop": ("店铺名称", "店铺"),
    "status": ("订单状态",),
    "created_at": ("订单提交时间", "下单时间"),
    "paid_at": ("支付完成时间", "支付时间"),
    "shipped_at": ("发货时间",),
    "amount": ("订单应付金额", "应付金额"),
    "buyer": ("买家昵称", "用户昵称"),
    "phone": ("收件人手机号", "收件人电话"),
    "item_title": ("选购商品", "商品名称"),
    "tracking_no": ("快递单号", "物流单号", "运单号"),
    "carrier": ("快递公司", "物流公司"),
    "express": ("快递信息", "物流信息"),  # recent exports: carrier and number in one cell
    "after_sale": ("售后状态",),
    "order_type": ("订单类型",),
    "ship_by": ("承诺发货时间", "预约发货时间", "最晚发货时间"),
}


def douyin_rows(cols: Columns, ctx: ReadContext) -> RowReader:
    f = Fields(cols, DOUYIN_ALIASES)
    time, shop, words = TimeParser(ctx.tz), ctx.shop, WordReader("douyin", ctx.unknown)

    def read(c: list) -> NormalizedOrder:
        order_no = parse_order_no(c[f.order_no], f.order_no_name)
        refunding = words.refund(c[f.after_sale], f.after_sale_name) == OPEN
        return _order_from_cells(c, f, time, words, "douyin", order_no, shop, clean_text(c[f.status]), refunding)

    return read


# --- Pinduoduo ----------------------------------------------------------------------------------

PINDUODUO_ALIASES = {
    "order_no": ("订单号",),
    "shop": ("店铺名称", "店铺"),
    "status": ("订单状态",),
    "created_at": ("订单创建时间",),
    "deal_at": ("订单成交时间",),
    "paid_at": ("支付时间",),
    "grouped_at": ("拼单成功时间",),
    "shipped_at": ("发货时间",),
    "amount": ("用户实付金额(元)", "商家实收金额(元)", "用户实付金额", "商家实收金额"),
    "buyer": ("买家昵称",),
    "phone": ("手机", "收货人手机号", "手机号"),
    "item_title": ("商品", "商品名称"),
    "tracking_no": ("快递单号",),
    "carrier": ("快递公司",),
    "after_sale": ("售后状态",),
    "ship_by": ("承诺发货时间", "预约发货时间"),
    "presale_flag": ("是否预售", "预售订单", "预售"),
    "presale_time": ("预售时间", "预售发货时间", "预计发货时间"),
    "order_type": ("订单类型",),
}


def pinduoduo_rows(cols: Columns, ctx: ReadContext) -> RowReader:
    f = Fields(cols, PINDUODUO_ALIASES)
    time, shop, words = TimeParser(ctx.tz), ctx.shop, WordReader("pinduoduo", ctx.unknown)
    has_presale_flag = "presale_flag" in cols

    def first_time(c: list, *fields: str):
        """The first non-empty of several time columns (支付时间 → 拼单成功时间 → 订单成交时间)."""
        for field_name in fields:
            moment = time(c[getattr(f, field_name)], getattr(f, f"{field_name}_name"))
            if moment is not None:
                return moment
        return None

    def read(c: list) -> NormalizedOrder:
        order_no = parse_order_no(c[f.order_no], f.order_no_name)
        status_raw = clean_text(c[f.status])
        word = words.status(status_raw, f.status_name)
        paid = first_time(c, "paid_at", "grouped_at", "deal_at")
        shipped = time(c[f.shipped_at], f.shipped_at_name)
        tracking = tracking_number(c[f.tracking_no])
        presale = (
            (has_presale_flag and _says_yes(c[f.presale_flag]))
            or bool(clean_text(c[f.presale_time]))
            or "预售" in clean_text(c[f.order_type])
        )
        return NormalizedOrder(
            platform="pinduoduo",
            order_no=order_no,
            shop=clean_text(c[f.shop]) or shop,
            status=_state(word, paid, shipped, tracking),
            status_raw=status_raw,
            refunding=words.refund(c[f.after_sale], f.after_sale_name) == OPEN
            or (word is not None and word.refund == OPEN),
            presale=presale,
            created_at=first_time(c, "created_at", "deal_at"),
            paid_at=paid,
            shipped_at=shipped,
            amount=parse_amount(c[f.amount], f.amount_name),
            buyer=_buyer(c[f.buyer], c[f.phone]),
            item_title=clean_text(c[f.item_title]),
            tracking_no=tracking,
            carrier=clean_text(c[f.carrier]),
            on_hold=word is not None and word.hold,
            # PDD counts the shipping deadline from 拼单成功 (the group formed), not from payment
            ship_from=time(c[f.grouped_at], f.grouped_at_name),
            ship_by=time(c[f.ship_by], f.ship_by_name),
        )

    return read


# --- JD POP --------------------------------------------------------------------------------------

JD_ALIASES = {
    "order_no": ("订单号",),
    "shop": ("店铺名称", "店铺"),
    "status": ("订单状态",),
    "created_at": ("下单时间",),
    "paid_at": ("付款确认时间", "付款时间"),
    "shipped_at": ("出库时间", "发货时间"),
    "amount": ("应付金额", "订单金额"),
    "buyer": ("下单帐号", "下单账号"),
    "phone": ("联系电话",),
    "item_title": ("商品名称",),
    "tracking_no": ("运单号", "快递单号"),
    "carrier": ("快递公司", "承运商"),
    "express": ("快递信息",),
    "order_type": ("订单类型",),
    "ship_by": ("承诺发货时间", "预约发货时间", "最晚出库时间"),
    "after_sale": ("售后状态", "退款状态", "服务单状态"),
}


def jd_rows(cols: Columns, ctx: ReadContext) -> RowReader:
    f = Fields(cols, JD_ALIASES)
    time, shop, words = TimeParser(ctx.tz), ctx.shop, WordReader("jd", ctx.unknown)

    def read(c: list) -> NormalizedOrder | None:
        status_raw = clean_text(c[f.status])
        if "删除" in status_raw:  # "(删除)等待出库": a row the seller deleted
            return None
        order_no = parse_order_no(c[f.order_no], f.order_no_name)
        refunding = words.refund(c[f.after_sale], f.after_sale_name) == OPEN
        return _order_from_cells(c, f, time, words, "jd", order_no, shop, status_raw, refunding)

    return read


# --- Generic CSV (and the HTTP endpoint's JSON items) -------------------------------------------

GENERIC_FIELDS = (
    "platform", "order_no", "shop", "status", "status_raw", "refunding", "presale",
    "created_at", "paid_at", "shipped_at", "amount", "buyer", "item_title", "tracking_no", "carrier",
    "on_hold", "ship_from", "ship_by",
)
GENERIC_ALIASES = {name: (name,) for name in GENERIC_FIELDS}


def generic_rows(cols: Columns, ctx: ReadContext) -> RowReader:
    """Documented columns; `status` is a normalised code or any status wording the importers know."""
    f = Fields(cols, GENERIC_FIELDS)
    time, shop, default_platform = TimeParser(ctx.tz), ctx.shop, ctx.platform or "other"
    words: dict[str, WordReader] = {}

    def read(c: list) -> NormalizedOrder:
        order_no = parse_order_no(c[f.order_no], f.order_no_name)
        platform = parse_platform(c[f.platform], f.platform_name, default_platform)
        status_text = clean_text(c[f.status])
        reader = words.get(platform)
        if reader is None:
            reader = words[platform] = WordReader(platform, ctx.unknown)
        word = reader.status(status_text, f.status_name)
        paid, shipped = time(c[f.paid_at], f.paid_at_name), time(c[f.shipped_at], f.shipped_at_name)
        tracking = tracking_number(c[f.tracking_no])
        return NormalizedOrder(
            platform=platform,
            order_no=order_no,
            shop=clean_text(c[f.shop]) or shop,
            status=_state(word, paid, shipped, tracking),
            status_raw=clean_text(c[f.status_raw]) or status_text,
            refunding=parse_flag(c[f.refunding], f.refunding_name) or (word is not None and word.refund == OPEN),
            presale=parse_flag(c[f.presale], f.presale_name),
            created_at=time(c[f.created_at], f.created_at_name),
            paid_at=paid,
            shipped_at=shipped,
            amount=parse_amount(c[f.amount], f.amount_name),
            buyer=mask_phone(clean_text(c[f.buyer])),
            item_title=clean_text(c[f.item_title]),
            tracking_no=tracking,
            carrier=clean_text(c[f.carrier]),
            on_hold=parse_flag(c[f.on_hold], f.on_hold_name) or (word is not None and word.hold),
            ship_from=time(c[f.ship_from], f.ship_from_name),
            ship_by=time(c[f.ship_by], f.ship_by_name),
        )

    return read


TAOBAO_LEGACY = ExportFormat("taobao_legacy", "taobao", TAOBAO_ALIASES, taobao_rows)
TAOBAO_QIANNIU = ExportFormat("taobao_qianniu", "taobao", TAOBAO_ALIASES, taobao_rows)
# Douyin: 订单应付金额 is taken to be each 子订单's own amount, so they are summed. [U] not verified
# against a real export (order-exports.md §2.1 lists the column, not its level).
DOUYIN = ExportFormat("douyin", "douyin", DOUYIN_ALIASES, douyin_rows, group_by_order=True, amount_rule="sum")
PINDUODUO = ExportFormat("pinduoduo", "pinduoduo", PINDUODUO_ALIASES, pinduoduo_rows)
# JD: one row per SKU; 应付金额 is taken to be the order's, repeated on each row, so the first is
# kept. [U] not verified either.
JD = ExportFormat("jd", "jd", JD_ALIASES, jd_rows, group_by_order=True, amount_rule="first")
GENERIC = ExportFormat("generic", None, GENERIC_ALIASES, generic_rows, lower_headers=True)
FORMATS = {f.name: f for f in (TAOBAO_LEGACY, TAOBAO_QIANNIU, DOUYIN, PINDUODUO, JD, GENERIC)}


#: Columns only the 抖店 order export has (every header variant seen: 订单提交时间/支付完成时间/选购商品,
#: and the recent 下单时间/支付时间/商品名称 with 快递信息 and 承诺发货时间). Two of them with 主订单编号
#: identify it; the Taobao 千牛 item sheet (子订单编号 + 主订单编号) has 商品标题, 订单创建时间,
#: 订单付款时间 and 退款状态 instead, none of these.
DOUYIN_MARKS = frozenset({
    "订单提交时间", "支付完成时间", "选购商品", "下单时间", "支付时间", "商品名称", "快递信息", "售后状态",
    "订单应付金额", "承诺发货时间", "预约发货时间", "收件人", "收件人手机号", "商品数量", "商品金额", "达人昵称",
    "取消原因",
})


class ItemReport(Exception):
    """The header of an item-level report (宝贝报表 / 千牛子订单表): the order sheet is needed."""


def detect_format(header: Sequence[str], *, workbook: bool = False) -> ExportFormat | None:
    """Which export a normalised header row belongs to, or None. Raises ItemReport for item sheets."""
    names = set(header)
    has = names.__contains__
    if has("主订单编号") and len(names & DOUYIN_MARKS) >= 2 and not has("买家应付邮费"):  # 买家应付邮费: Taobao
        return DOUYIN
    if has("子订单编号") and has("主订单编号"):
        raise ItemReport()
    if has("订单编号"):
        taobao_times = has("订单创建时间") or has("订单付款时间")
        if has("买家应付邮费") or (has("订单状态") and taobao_times):
            renamed = has("买家实付金额") or has("商品标题")
            return TAOBAO_QIANNIU if workbook or renamed else TAOBAO_LEGACY
        if has("标题") and has("购买数量"):
            raise ItemReport()
    if has("订单号") and has("订单状态"):
        if any(has(n) for n in ("商家实收金额(元)", "用户实付金额(元)", "拼单成功时间", "商品总价(元)", "订单成交时间")):
            return PINDUODUO
        if any(has(n) for n in ("付款确认时间", "京东价", "下单时间", "下单帐号")):
            return JD
    lower = {n.lower() for n in names}
    if "order_no" in lower and "status" in lower:
        return GENERIC
    return None
