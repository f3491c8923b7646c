"""Status and refund wording of each platform's exports, as data (issue 11).

One table per platform. A status word maps to its canonical state and, when the word also says
something about after-sales (PDD writes both in one cell: 已发货，退款成功), to a refund reading;
a refund word (售后状态 / 退款状态 / the refund part of a status) maps to one refund reading:

    OPEN     a refund or after-sale is pending or in progress: the ONLY reading that suppresses a
             shipping reminder (退款中, 售后处理中, 买家申请退款待商家处理, ...)
    NONE     no refund in progress (none asked, cancelled, withdrawn, rejected, closed, failed):
             the order still has to ship or be paid, and its reminders fire
    SUCCESS  a refund went through. Alone it does not stop a reminder (a partial refund leaves the
             rest to ship); a refunded WHOLE order says so in its status (交易关闭, 已取消，退款成功,
             发货前退款完结, ...), which is mapped to `closed`.

`HOLD` on a status means the platform holds the order (JD 锁定 / 暂停, Taobao PAID_FORBID_CONSIGN,
PDD 拼团中): it is kept and shown, but no shipping reminder runs while it is held.

Words are compared in `status_key` form (NFKC, so full-width and ASCII commas are the same; no
spaces; lower case). A platform's own table is looked up first, then the shared table (the
canonical codes themselves and API codes ERPs emit), then the other platforms' tables (a generic
CSV or a third-party export may use any of them).

Unknown wording is NEVER guessed into a suppression or a rejection: the reader keeps the row with
its raw text, takes the conservative reading (status inferred from the order's own times, so a
paid, unshipped order is reminded; refund: none), and counts the word for the import summary.
Sources: /work/shared/domain/order-exports.md (section 0 "Corrections" first) and §1.3, §2.
To add a word a supervisor reported, add one line to the platform's table below.
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

OPEN = "open"
NONE = "none"
SUCCESS = "success"
REFUND_READINGS = (OPEN, NONE, SUCCESS)

_ALL_SPACE = re.compile(r"\s+")


def status_key(text: str) -> str:
    """Comparison form of a status text: NFKC (full-width comma → ASCII), no spaces, lower case."""
    return _ALL_SPACE.sub("", unicodedata.normalize("NFKC", text)).lower()


class StatusWord(NamedTuple):
    state: str  # one of bot.orders.model.STATUSES
    refund: str | None = None  # OPEN / NONE / SUCCESS when the word says it, else None
    hold: bool = False


U, P, PS, S, C, X = "unpaid", "paid_unshipped", "partially_shipped", "shipped", "completed", "closed"
HOLD = True

# --- status words ---------------------------------------------------------------------------------

STATUS_WORDS: dict[str, dict[str, StatusWord]] = {
    "shared": {
        # the canonical codes (generic CSV, the HTTP endpoint, `kefu import --json` output)
        U: StatusWord(U), P: StatusWord(P), PS: StatusWord(PS), S: StatusWord(S), C: StatusWord(C),
        X: StatusWord(X),
    },
    "taobao": {
        "等待买家付款": StatusWord(U),
        "没有创建支付宝交易": StatusWord(U),
        "TRADE_NO_CREATE_PAY": StatusWord(U),
        "WAIT_BUYER_PAY": StatusWord(U),
        "PAY_PENDING": StatusWord(U),
        "WAIT_PRE_AUTH_CONFIRM": StatusWord(U),  # 0 元购 pre-authorisation not confirmed: not paid yet
        "余额宝0元购合约中": StatusWord(U),
        "买家已付款，等待卖家发货": StatusWord(P),
        "等待卖家发货": StatusWord(P),
        "WAIT_SELLER_SEND_GOODS": StatusWord(P),
        "PAID_FORBID_CONSIGN": StatusWord(P, hold=HOLD),  # paid, shipping not allowed yet (e.g. 拼团)
        "卖家部分发货": StatusWord(PS),
        "SELLER_CONSIGNED_PART": StatusWord(PS),
        "卖家已发货，等待买家确认": StatusWord(S),
        "卖家已发货，等待买家确认收货": StatusWord(S),
        "WAIT_BUYER_CONFIRM_GOODS": StatusWord(S),
        "买家已签收": StatusWord(S),
        "买家已签收，货到付款专用": StatusWord(S),
        "TRADE_BUYER_SIGNED": StatusWord(S),
        "交易成功": StatusWord(C),
        "TRADE_FINISHED": StatusWord(C),
        "交易关闭": StatusWord(X),
        "交易被淘宝关闭": StatusWord(X),
        "TRADE_CLOSED": StatusWord(X),
        "TRADE_CLOSED_BY_TAOBAO": StatusWord(X),
        "付款以后用户退款成功，交易自动关闭": StatusWord(X, SUCCESS),
        "付款以前，卖家或买家主动关闭交易": StatusWord(X),
    },
    "douyin": {
        "待支付": StatusWord(U),
        "待付款": StatusWord(U),
        "待确认": StatusWord(U),
        "已支付": StatusWord(P),
        "待发货": StatusWord(P),
        "备货中": StatusWord(P),
        "部分发货": StatusWord(PS),
        "已发货": StatusWord(S),
        "全部发货": StatusWord(S),
        "已发货（全部发货）": StatusWord(S),
        "待收货": StatusWord(S),
        "已完成": StatusWord(C),
        "已完成（已收货）": StatusWord(C),
        "已收货": StatusWord(C),
        "已关闭": StatusWord(X),
        "已取消": StatusWord(X),
        "发货前退款完结": StatusWord(X, SUCCESS),
        "发货后退款完结": StatusWord(X, SUCCESS),
        "收货后退款完结": StatusWord(X, SUCCESS),
    },
    "pinduoduo": {
        "待支付": StatusWord(U),
        "待付款": StatusWord(U),
        "待发货": StatusWord(P),
        "未发货": StatusWord(P),
        "拼团中": StatusWord(P, hold=HOLD),  # paid, the group is not formed yet: nothing to ship
        "待成团": StatusWord(P, hold=HOLD),
        "已发货，待签收": StatusWord(S),
        "已发货，待收货": StatusWord(S),
        "已发货": StatusWord(S),
        "已签收": StatusWord(C),
        "已收货": StatusWord(C),
        "已取消": StatusWord(X),
        "未成交": StatusWord(X),
        # order state and after-sale state in one cell: 退款成功 on the whole order closes it
        "未发货，退款成功": StatusWord(X, SUCCESS),
        "已发货，退款成功": StatusWord(X, SUCCESS),
        "已签收，退款成功": StatusWord(X, SUCCESS),
        "已收货，退款成功": StatusWord(X, SUCCESS),
        "已取消，退款成功": StatusWord(X, SUCCESS),
        "未成交，退款成功": StatusWord(X, SUCCESS),
    },
    "jd": {
        "等待付款": StatusWord(U),
        "WAIT_PAY": StatusWord(U),
        "等待出库": StatusWord(P),
        "WAIT_SELLER_STOCK_OUT": StatusWord(P),
        "等待发货": StatusWord(P),
        "WAIT_SELLER_DELIVERY": StatusWord(P),
        "锁定": StatusWord(P, hold=HOLD),
        "已锁定": StatusWord(P, hold=HOLD),
        "LOCKED": StatusWord(P, hold=HOLD),
        "暂停": StatusWord(P, hold=HOLD),
        "POP_ORDER_PAUSE": StatusWord(P, hold=HOLD),
        "PAUSE": StatusWord(P, hold=HOLD),
        # LBP/SOPL merchants: the seller sends the parcel to JD's distribution centre; it has left
        # the seller, so no shipping reminder (JD order API order_state list, in public SDK code)
        "发往配送中心": StatusWord(S),
        "SEND_TO_DISTRIBUTION_CENER": StatusWord(S),  # (sic, the API's spelling)
        "配送中心已收货": StatusWord(S),
        "DISTRIBUTION_CENTER_RECEIVED": StatusWord(S),
        "等待确认收货": StatusWord(S),
        "WAIT_GOODS_RECEIVE_CONFIRM": StatusWord(S),
        "收款确认": StatusWord(C),  # cash on delivery: the money was collected on delivery
        "RECEIPTS_CONFIRM": StatusWord(C),
        "收款确认（服务完成）": StatusWord(C),
        "收款完成，服务完成": StatusWord(C),
        "完成": StatusWord(C),
        "已完成": StatusWord(C),
        "FINISHED_L": StatusWord(C),
        "取消": StatusWord(X),
        "已取消": StatusWord(X),
        "TRADE_CANCELED": StatusWord(X),
    },
}

# --- refund / after-sale words --------------------------------------------------------------------

_NO_REFUND_COMMON = {
    "无售后": NONE, "无售后或售后取消": NONE, "无售后或售后关闭": NONE, "无售后/取消售后": NONE, "取消售后": NONE,
    "售后取消": NONE, "售后关闭": NONE, "售后已取消": NONE, "售后已关闭": NONE, "售后完成": NONE,
    "没有申请退款": NONE, "无退款申请": NONE, "无退款": NONE, "无": NONE, "否": NONE, "0": NONE,
    "买家撤销": NONE, "买家已撤销": NONE, "撤销申请": NONE,
    "退款关闭": NONE, "退款失败": NONE, "买家逾期未处理，退款失败": NONE,
    "平台/商家拒绝退款，退款关闭": NONE, "平台拒绝退款": NONE, "商家拒绝退款": NONE, "卖家拒绝退款": NONE,
    "拒绝退款": NONE, "平台/商家拒绝退款": NONE, "平台拒绝退款，退款关闭": NONE, "商家拒绝退款，退款关闭": NONE,
    "退款中": OPEN, "售后处理中": OPEN, "售后中": OPEN, "退款处理中": OPEN, "申请退款中": OPEN,
    "买家申请退款待商家处理": OPEN, "买家申请退款，待商家处理": OPEN, "商家同意退款退款中": OPEN,
    "商家同意退款，退款中": OPEN, "退货退款待商家处理": OPEN, "已同意退货退款待用户发货": OPEN,
    "已同意退货退款，待用户发货": OPEN, "待买家退货": OPEN, "待商家收货": OPEN, "换货中": OPEN,
    "退款成功": SUCCESS, "部分退款成功": SUCCESS, "退款完成": SUCCESS,
}

REFUND_WORDS: dict[str, dict[str, str]] = {
    "shared": dict(_NO_REFUND_COMMON),
    "taobao": {
        "买家已经申请退款，等待卖家同意": OPEN,
        "WAIT_SELLER_AGREE": OPEN,
        "卖家已经同意退款，等待买家退货": OPEN,
        "WAIT_BUYER_RETURN_GOODS": OPEN,
        "买家已经退货，等待卖家确认收货": OPEN,
        "WAIT_SELLER_CONFIRM_GOODS": OPEN,
        "卖家拒绝退款": NONE,
        "SELLER_REFUSE_BUYER": NONE,
        "CLOSED": NONE,
        "NO_REFUND": NONE,
        "SUCCESS": SUCCESS,
    },
    "douyin": {},
    "pinduoduo": {},
    "jd": {},
}


class Vocabulary:
    """Lookups of one platform's words (None: every table, as for a generic CSV)."""

    def __init__(self, platform: str | None) -> None:
        self.status = _merged(STATUS_WORDS, platform)
        self.refund = _merged(REFUND_WORDS, platform)

    def status_word(self, raw: str) -> StatusWord | None:
        return self.status.get(status_key(raw))

    def refund_word(self, raw: str) -> str | None:
        return self.refund.get(status_key(raw))


def _merged(tables: dict[str, dict], platform: str | None) -> dict:
    """key → value: the platform's own words win over the shared ones, which win over the others'."""
    order = [platform] if platform in tables else []
    order += ["shared"] + [p for p in tables if p not in (platform, "shared")]
    merged: dict = {}
    for name in reversed(order):
        for word, value in tables[name].items():
            merged[status_key(word)] = value
    return merged


_CACHE: dict[str | None, Vocabulary] = {}


def vocabulary(platform: str | None) -> Vocabulary:
    found = _CACHE.get(platform)
    if found is None:
        found = _CACHE[platform] = Vocabulary(platform)
    return found


def infer_state(paid: bool, shipped: bool) -> str:
    """The conservative state of an order whose status word is unknown: from its own times, so an
    order that is paid and not shipped is reminded like any other."""
    if shipped:
        return S
    return P if paid else U
