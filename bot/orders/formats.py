"""The export formats: how each is recognised from its header row and how a row becomes an order.

Columns are found BY NAME through alias tables (sellers choose and reorder columns in the newer
exports), never by position. Header names are compared after `normalize_header`, which removes
what Excel and the back-ends add around them: trailing and full-width spaces, NBSP, a BOM,
`=`, quotes and line breaks. See /work/shared/domain/order-exports.md for the sources.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Callable, Sequence

from bot.orders.model import NormalizedOrder, mask_phone
from bot.orders.values import (
    RowError,
    after_sale_open,
    clean_text,
    parse_amount,
    parse_flag,
    parse_order_no,
    parse_platform,
    parse_status,
    parse_time,
    refund_amount_open,
    tracking_number,
)

_HEADER_NOISE = re.compile(r"[\s=\"'\ufeff\u200b]")


def normalize_header(cell: object) -> str:
    """订单付款时间␠ / ＝"订单编号" / 商品总价（元） → 订单付款时间 / 订单编号 / 商品总价(元)."""
    if cell is None:
        return ""
    return _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", str(cell)))


@dataclass
class ReadContext:
    """What a row mapper needs besides the row: the shop's zone and the caller's defaults."""

    tz: tzinfo
    shop: str = ""
    platform: str | None = None


Getter = Callable[[str], object]


class Columns:
    """Where each field sits in this file: the first alias present in the header wins."""

    def __init__(self, header: Sequence[str], aliases: dict[str, tuple[str, ...]], *, lower: bool = False) -> None:
        position = {}
        for i, name in enumerate(header):
            key = name.lower() if lower else name
            position.setdefault(key, i)
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

    def name(self, canonical: str) -> str:
        return self.names.get(canonical, canonical)

    def getter(self, cells: Sequence[object]) -> Getter:
        index, size = self.index, len(cells)

        def get(canonical: str) -> object:
            i = index.get(canonical)
            return cells[i] if i is not None and i < size else None

        return get


RowMapper = Callable[[Getter, Columns, ReadContext], "NormalizedOrder | None"]


@dataclass
class ExportFormat:
    name: str  # stored as orders.source
    platform: str | None  # None: the rows say (generic CSV)
    aliases: dict[str, tuple[str, ...]]
    map_row: RowMapper
    #: Formats with one row per item: rows sharing an order number are merged into one order.
    group_by_order: bool = False
    amount_rule: str = "first"  # "sum" when each item row carries its own amount
    lower_headers: bool = False
    required: tuple[str, ...] = ("order_no", "status")
    extra: dict[str, object] = field(default_factory=dict)


def _buyer(get: Getter, nickname: str = "buyer", phone: str = "phone") -> str:
    """The buyer's nickname; a masked phone only when there is nothing else. Never a full phone."""
    name = clean_text(get(nickname))
    if name:
        return mask_phone(name)
    number = clean_text(get(phone))
    if not number:
        return ""
    masked = mask_phone(number)
    return masked if masked != number or "*" in number else ""


_NO_WORDS = frozenset({"", "否", "0", "false", "no", "n", "非预售"})


def _says_yes(value: object) -> bool:
    """A yes/no column such as 预售订单 (是/否); anything but a "no" counts as yes."""
    return clean_text(value).lower() not in _NO_WORDS


def _times(get: Getter, cols: Columns, ctx: ReadContext, *names: str):
    return [parse_time(get(n), ctx.tz, cols.name(n)) for n in names]


def _first_time(get: Getter, cols: Columns, ctx: ReadContext, *names: str):
    """The first non-empty of several time columns (Pinduoduo: 支付时间 → 拼单成功时间 → 成交时间)."""
    for name in names:
        moment = parse_time(get(name), ctx.tz, cols.name(name))
        if moment is not None:
            return moment
    return None


def _with_order_no(order_no: str, build: Callable[[], NormalizedOrder | None]) -> NormalizedOrder | None:
    try:
        return build()
    except RowError as error:
        error.order_no = order_no
        raise


# --- Taobao / Tmall: legacy 订单报表 CSV and the 千牛 order sheet ---------------------------------

TAOBAO_ALIASES = {
    "order_no": ("订单编号", "主订单编号"),
    "shop": ("店铺名称",),
    "status": ("订单状态",),
    "created_at": ("订单创建时间",),
    "paid_at": ("订单付款时间", "付款时间"),
    "shipped_at": ("发货时间",),
    "amount": ("买家实际支付金额", "买家实付金额", "实付金额", "总金额"),
    "buyer": ("买家会员名", "买家昵称"),
    "phone": ("联系手机", "买家手机号", "联系电话"),
    "item_title": ("宝贝标题", "商品标题"),
    "tracking_no": ("物流单号",),
    "carrier": ("物流公司",),
    "refund_amount": ("退款金额",),
    "stage_info": ("分阶段订单信息",),
    "presale_flag": ("预售订单",),
}


def map_taobao(get: Getter, cols: Columns, ctx: ReadContext) -> NormalizedOrder:
    order_no = parse_order_no(get("order_no"), cols.name("order_no"))
    status_raw = clean_text(get("status"))
    created, paid, shipped = _times(get, cols, ctx, "created_at", "paid_at", "shipped_at")
    presale = bool(clean_text(get("stage_info"))) or _says_yes(get("presale_flag"))
    return NormalizedOrder(
        platform="taobao",
        order_no=order_no,
        shop=clean_text(get("shop")) or ctx.shop,
        status=parse_status(status_raw, cols.name("status")),
        status_raw=status_raw,
        refunding=refund_amount_open(get("refund_amount"), cols.name("refund_amount")),
        presale=presale,
        created_at=created,
        paid_at=paid,
        shipped_at=shipped,
        amount=parse_amount(get("amount"), cols.name("amount")),
        buyer=_buyer(get),
        item_title=clean_text(get("item_title")),
        tracking_no=tracking_number(get("tracking_no")),
        carrier=clean_text(get("carrier")),
    )


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
    "after_sale": ("售后状态",),
    "order_type": ("订单类型",),
}


def map_douyin(get: Getter, cols: Columns, ctx: ReadContext) -> NormalizedOrder:
    order_no = parse_order_no(get("order_no"), cols.name("order_no"))

    def build() -> NormalizedOrder:
        status_raw = clean_text(get("status"))
        created, paid, shipped = _times(get, cols, ctx, "created_at", "paid_at", "shipped_at")
        return NormalizedOrder(
            platform="douyin",
            order_no=order_no,
            shop=clean_text(get("shop")) or ctx.shop,
            status=parse_status(status_raw, cols.name("status")),
            status_raw=status_raw,
            refunding=after_sale_open(get("after_sale")),
            presale="预售" in clean_text(get("order_type")),
            created_at=created,
            paid_at=paid,
            shipped_at=shipped,
            amount=parse_amount(get("amount"), cols.name("amount")),
            buyer=_buyer(get),
            item_title=clean_text(get("item_title")),
            tracking_no=tracking_number(get("tracking_no")),
            carrier=clean_text(get("carrier")),
        )

    return _with_order_no(order_no, build)


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
}


def map_pinduoduo(get: Getter, cols: Columns, ctx: ReadContext) -> NormalizedOrder:
    order_no = parse_order_no(get("order_no"), cols.name("order_no"))
    status_raw = clean_text(get("status"))
    return NormalizedOrder(
        platform="pinduoduo",
        order_no=order_no,
        shop=clean_text(get("shop")) or ctx.shop,
        status=parse_status(status_raw, cols.name("status")),
        status_raw=status_raw,
        refunding=after_sale_open(get("after_sale")),
        presale=False,
        created_at=_first_time(get, cols, ctx, "created_at", "deal_at"),
        paid_at=_first_time(get, cols, ctx, "paid_at", "grouped_at", "deal_at"),
        shipped_at=parse_time(get("shipped_at"), ctx.tz, cols.name("shipped_at")),
        amount=parse_amount(get("amount"), cols.name("amount")),
        buyer=_buyer(get),
        item_title=clean_text(get("item_title")),
        tracking_no=tracking_number(get("tracking_no")),
        carrier=clean_text(get("carrier")),
    )


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
    "order_type": ("订单类型",),
}


def map_jd(get: Getter, cols: Columns, ctx: ReadContext) -> NormalizedOrder | None:
    status_raw = clean_text(get("status"))
    if "删除" in status_raw:  # "(删除)等待出库": a row the seller deleted
        return None
    order_no = parse_order_no(get("order_no"), cols.name("order_no"))

    def build() -> NormalizedOrder:
        created, paid, shipped = _times(get, cols, ctx, "created_at", "paid_at", "shipped_at")
        return NormalizedOrder(
            platform="jd",
            order_no=order_no,
            shop=clean_text(get("shop")) or ctx.shop,
            status=parse_status(status_raw, cols.name("status")),
            status_raw=status_raw,
            refunding=False,
            presale="预售" in clean_text(get("order_type")),
            created_at=created,
            paid_at=paid,
            shipped_at=shipped,
            amount=parse_amount(get("amount"), cols.name("amount")),
            buyer=_buyer(get),
            item_title=clean_text(get("item_title")),
            tracking_no=tracking_number(get("tracking_no")),
            carrier=clean_text(get("carrier")),
        )

    return _with_order_no(order_no, build)


# --- Generic CSV (and the HTTP endpoint's JSON items) -------------------------------------------

GENERIC_FIELDS = (
    "platform", "order_no", "shop", "status", "status_raw", "refunding", "presale",
    "created_at", "paid_at", "shipped_at", "amount", "buyer", "item_title", "tracking_no", "carrier",
)
GENERIC_ALIASES = {name: (name,) for name in GENERIC_FIELDS}


def map_generic(get: Getter, cols: Columns, ctx: ReadContext) -> NormalizedOrder:
    """Documented columns; `status` is a normalised code or any status wording the importers know."""
    order_no = parse_order_no(get("order_no"), cols.name("order_no"))
    platform = parse_platform(get("platform"), cols.name("platform"), ctx.platform or "other")
    status_text = clean_text(get("status"))
    created, paid, shipped = _times(get, cols, ctx, "created_at", "paid_at", "shipped_at")
    return NormalizedOrder(
        platform=platform,
        order_no=order_no,
        shop=clean_text(get("shop")) or ctx.shop,
        status=parse_status(status_text, cols.name("status")),
        status_raw=clean_text(get("status_raw")) or status_text,
        refunding=parse_flag(get("refunding"), cols.name("refunding")),
        presale=parse_flag(get("presale"), cols.name("presale")),
        created_at=created,
        paid_at=paid,
        shipped_at=shipped,
        amount=parse_amount(get("amount"), cols.name("amount")),
        buyer=mask_phone(clean_text(get("buyer"))),
        item_title=clean_text(get("item_title")),
        tracking_no=tracking_number(get("tracking_no")),
        carrier=clean_text(get("carrier")),
    )


TAOBAO_LEGACY = ExportFormat("taobao_legacy", "taobao", TAOBAO_ALIASES, map_taobao)
TAOBAO_QIANNIU = ExportFormat("taobao_qianniu", "taobao", TAOBAO_ALIASES, map_taobao)
DOUYIN = ExportFormat("douyin", "douyin", DOUYIN_ALIASES, map_douyin, group_by_order=True, amount_rule="sum")
PINDUODUO = ExportFormat("pinduoduo", "pinduoduo", PINDUODUO_ALIASES, map_pinduoduo)
JD = ExportFormat("jd", "jd", JD_ALIASES, map_jd, group_by_order=True, amount_rule="first")
GENERIC = ExportFormat("generic", None, GENERIC_ALIASES, map_generic, lower_headers=True)
FORMATS = {f.name: f for f in (TAOBAO_LEGACY, TAOBAO_QIANNIU, DOUYIN, PINDUODUO, JD, GENERIC)}


class ItemReport(Exception):
    """The header of an item-level report (宝贝报表 / 千牛子订单表): the order sheet is needed."""


def detect_format(header: Sequence[str], *, workbook: bool = False) -> ExportFormat | None:
    """Which export a normalised header row belongs to, or None. Raises ItemReport for item sheets."""
    names = set(header)
    has = names.__contains__
    douyin_marks = has("订单提交时间") or has("支付完成时间") or has("选购商品")
    if has("主订单编号") and douyin_marks:
        return DOUYIN
    if has("子订单编号") and has("主订单编号"):
        raise ItemReport()
    if has("订单编号"):
        if has("买家应付邮费") or (has("订单状态") and has("订单创建时间")):
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
