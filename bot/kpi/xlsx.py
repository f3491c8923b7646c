"""A KPI report as an Excel workbook (openpyxl): standards, summary blocks, one sheet per breakdown.
Amounts stay exact: written as numbers from their decimal strings with a 0.00 format."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from openpyxl import Workbook


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return str(value)
    return value


def report_xlsx(report: dict[str, Any], renderer) -> bytes:
    L = renderer.label
    wb = Workbook()
    ws = wb.active
    ws.title = L("kpi.xlsx.standards")
    ws.append([L("kpi.xlsx.id"), L("kpi.xlsx.name"), L("kpi.xlsx.target"), L("kpi.xlsx.achieved"),
               L("kpi.xlsx.n"), L("kpi.xlsx.met"), L("kpi.xlsx.trend")])
    for s in report["standards"]:
        met = None if s["met"] is None else L("kpi.xlsx.met_yes") if s["met"] else L("kpi.xlsx.met_no")
        ws.append([s["id"], s["name"], s["target"], s["achieved"], s["n"], met, s.get("trend_pp")])
    summary = wb.create_sheet(L("kpi.xlsx.summary"))
    summary.append([L("kpi.xlsx.key"), L("kpi.xlsx.value")])
    for block in ("payment_reminders", "shipping", "claims", "handover", "broadcasts"):
        for key, value in report[block].items():
            if isinstance(value, str) and key.endswith("amount") or key.startswith("recovered"):
                summary.append([f"{block}.{key}", Decimal(value)])
                summary.cell(summary.max_row, 2).number_format = "0.00"
            else:
                summary.append([f"{block}.{key}", _cell(value)])
    for level, rows in report.get("breakdowns", {}).items():
        sheet = wb.create_sheet(L(f"kpi.xlsx.breakdown_{level}"))
        columns = sorted({k for row in rows.values() for k in row})
        sheet.append([L("kpi.xlsx.group"), *columns])
        for key, row in rows.items():
            values = []
            for c in columns:
                v = row.get(c)
                values.append(Decimal(v) if c == "recovered_amount" and v is not None else _cell(v))
            sheet.append([key, *values])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
