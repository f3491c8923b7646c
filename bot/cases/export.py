"""Cases to XLSX (openpyxl): one row per case, and a sheet of history.

Personal data is masked unless the caller asks for the full file (`full=True`: an admin in the
bot; on the server the operator running `kefu` is trusted). Masked: buyer phone (138****1234),
buyer address (first 6 characters, then ****), and phone numbers inside free text (buyer,
description, notes, history values). Every text cell starting with = + - @ tab or CR is
neutralised with a leading apostrophe so a spreadsheet never runs it as a formula.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import tzinfo
from pathlib import Path
from typing import Any

from bot.cases.model import Case, HistoryEntry
from bot.render import mask_phone

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PHONE_IN_TEXT = re.compile(r"(?<!\d)(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?!\d)")
ADDRESS_KEEP = 6

CASE_COLUMNS = (
    "id", "opened_at", "platform", "shop", "order_no", "buyer", "buyer_phone", "buyer_address", "item",
    "problem", "resolution", "amount", "shipping_payer", "responsible", "responsible_person", "state",
    "approval_state", "approver", "decided_at", "opened_by", "owner", "due_at", "finished_at",
    "evidence", "description", "notes",
)
HISTORY_COLUMNS = ("case_id", "at", "actor", "action", "field", "old", "new", "detail")


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would read as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def mask_text(text: str) -> str:
    return _PHONE_IN_TEXT.sub(lambda m: f"{m[1]}****{m[3]}", text or "")


def mask_address(text: str) -> str:
    text = (text or "").strip()
    if not text:
        return ""
    return text[:ADDRESS_KEEP] + "****"


def case_row(case: Case, tz: tzinfo, names: dict[int, str], full: bool) -> list[Any]:
    def when(moment) -> str:
        return "" if moment is None else moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")

    def who(tg_id: int | None) -> str:
        return "" if tg_id is None else names.get(tg_id, str(tg_id))

    approval = case.approval
    privacy = (lambda s: s) if full else mask_text
    values = {
        "id": case.id, "opened_at": when(case.opened_at), "platform": case.platform, "shop": case.shop,
        "order_no": case.order_no, "buyer": privacy(case.buyer),
        "buyer_phone": case.buyer_phone if full else mask_phone(case.buyer_phone),
        "buyer_address": case.buyer_address if full else mask_address(case.buyer_address),
        "item": case.item, "problem": case.problem, "resolution": case.resolution or "",
        "amount": case.amount or "", "shipping_payer": case.shipping_payer or "",
        "responsible": case.responsible or "", "responsible_person": who(case.responsible_person),
        "state": case.state, "approval_state": approval.state if approval else "",
        "approver": who(approval.approver) if approval else "",
        "decided_at": when(approval.decided_at) if approval else "",
        "opened_by": who(case.opened_by), "owner": who(case.owner), "due_at": when(case.due_at),
        "finished_at": when(case.finished_at), "evidence": len(case.evidence),
        "description": privacy(case.description), "notes": privacy(case.notes),
    }
    return [neutralise(values[c]) for c in CASE_COLUMNS]


def history_row(entry: HistoryEntry, tz: tzinfo, names: dict[int, str], full: bool) -> list[Any]:
    privacy = (lambda s: s) if full else mask_text
    old, new = entry.old, entry.new
    if not full and entry.field == "buyer_address":
        old, new = mask_address(old), mask_address(new)
    values = [
        entry.case_id, entry.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
        "" if entry.actor is None else names.get(entry.actor, str(entry.actor)), entry.action, entry.field,
        privacy(old), privacy(new), privacy(entry.detail),
    ]
    return [neutralise(v) for v in values]


def write_xlsx(
    path: Path, cases: Sequence[Case], history: Iterable[HistoryEntry], tz: tzinfo, *,
    names: dict[int, str], headers: dict[str, str], sheet_titles: tuple[str, str], full: bool = False,
) -> Path:
    """Write the workbook; `headers` maps column codes to the (Chinese) header texts from labels."""
    from openpyxl import Workbook  # lazy: openpyxl (and numpy under it) costs ~0.3 s at start-up

    workbook = Workbook(write_only=True)
    cases_sheet = workbook.create_sheet(sheet_titles[0])
    cases_sheet.append([headers.get(c, c) for c in CASE_COLUMNS])
    for case in cases:
        cases_sheet.append(case_row(case, tz, names, full))
    history_sheet = workbook.create_sheet(sheet_titles[1])
    history_sheet.append([headers.get(c, c) for c in HISTORY_COLUMNS])
    wanted = {c.id for c in cases}
    for entry in history:
        if entry.case_id in wanted:
            history_sheet.append(history_row(entry, tz, names, full))
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path
