"""Charts for the Monday meeting as PNG bytes (matplotlib, Agg). CPU-bound: call from a thread
(`await asyncio.to_thread(render_pack, pack, renderer)`), never on the event loop.

Chinese labels need a CJK font on any machine set up by `pip install -e .`: the dependency
paperang-p2-fonts-cjk ships WenQuanYi Micro Hei (wqy-microhei.ttc, Apache-2.0 / GPLv3 with font
exception: redistributable), registered here by path with matplotlib's font_manager.
Every word comes from templates/labels/kpi.yaml.
"""

from __future__ import annotations

import io
import os
import threading
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib import font_manager  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

MAX_BYTES = 200 * 1024
DPI = 100
_lock = threading.Lock()
_font_name: str | None = None


def cjk_font_path() -> str:
    import paperang_p2_fonts_cjk

    return os.path.join(os.path.dirname(paperang_p2_fonts_cjk.__file__), "fonts", "wqy-microhei.ttc")


def cjk_font() -> str:
    """Register the packaged CJK font once; its family name."""
    global _font_name
    with _lock:
        if _font_name is None:
            path = cjk_font_path()
            font_manager.fontManager.addfont(path)
            _font_name = font_manager.FontProperties(fname=path).get_name()
    return _font_name


def _figure(width: float = 8, height: float = 4.5) -> Figure:
    name = cjk_font()
    fig = Figure(figsize=(width, height), dpi=DPI)
    fig.set_layout_engine("tight")
    return fig, {"family": [name, "DejaVu Sans"]}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    data = buf.getvalue()
    if len(data) > MAX_BYTES:  # never expected at these sizes; shrink rather than send a huge file
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI // 2)
        data = buf.getvalue()
    return data


def _apply_font(ax, font: dict) -> None:
    for label in [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.title, ax.xaxis.label, ax.yaxis.label]:
        label.set_fontfamily(font["family"])


def standards_chart(weeks: list[str], standards: list[dict[str, Any]], label) -> bytes:
    """Achieved % per week against each target, one small panel per standard."""
    n = max(len(standards), 1)
    cols = 2
    rows = (n + cols - 1) // cols
    fig, font = _figure(9, 2.2 * rows + 0.6)
    fig.suptitle(label("kpi.chart.standards_title"), fontfamily=font["family"])
    xs = [w[5:] for w in weeks]
    for i, std in enumerate(standards):
        ax = fig.add_subplot(rows, cols, i + 1)
        values = [v if v is not None else float("nan") for v in std["achieved"]]
        ax.plot(xs, values, marker="o", label=label("kpi.chart.achieved"))
        if std.get("target") is not None:
            ax.axhline(std["target"], color="tab:red", linestyle="--", label=label("kpi.chart.target"))
        ax.set_title(std["name"], fontsize=9)
        ax.set_ylim(0, 105)
        ax.tick_params(labelsize=7)
        _apply_font(ax, font)
        if i == 0:
            ax.legend(prop={"family": font["family"], "size": 7})
    return _png(fig)


def payment_chart(per_day: list[dict[str, Any]], label) -> bytes:
    fig, font = _figure()
    ax = fig.add_subplot(1, 1, 1)
    days = [d["day"][5:] for d in per_day]
    amounts = [float(d["recovered_amount"]) for d in per_day]  # plotting only; the figures stay Decimal strings
    ax.bar(days, amounts, color="tab:green", alpha=0.6)
    ax.set_ylabel(label("kpi.chart.recovered"))
    ax.set_xlabel(label("kpi.chart.day"))
    ax.set_title(label("kpi.chart.payment_title"))
    ax2 = ax.twinx()
    ax2.plot(days, [d["rate"] if d["rate"] is not None else float("nan") for d in per_day], marker="o",
             color="tab:blue")
    ax2.set_ylabel(label("kpi.chart.payment_rate"))
    ax2.set_ylim(0, 105)
    _apply_font(ax, font)
    _apply_font(ax2, font)
    return _png(fig)


def claim_chart(by_shift: dict[str, list[float]], label, shift_label=lambda s: s) -> bytes:
    fig, font = _figure()
    ax = fig.add_subplot(1, 1, 1)
    names = list(by_shift)
    if names and any(by_shift.values()):
        ax.boxplot([by_shift[n] or [0] for n in names], whis=(10, 90), showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), [shift_label(n) for n in names])
    else:
        ax.text(0.5, 0.5, label("kpi.chart.no_data"), ha="center", fontfamily=font["family"])
    ax.set_ylabel(label("kpi.chart.claim_minutes"))
    ax.set_title(label("kpi.chart.claim_title"))
    _apply_font(ax, font)
    return _png(fig)


def people_table(people: dict[Any, dict[str, Any]], label) -> bytes:
    rows = []
    for page in people.values():
        f = page["figures"]
        rows.append([page["name"], f.get("reminders", 0), _fmt(f.get("median_minutes_to_claim")),
                     _fmt(f.get("p90_minutes_to_claim")),
                     "—" if f.get("payment_rate") is None else f"{f['payment_rate']:.1f}%",
                     f.get("recovered_amount", "0.00")])
    fig, font = _figure(9, 0.4 * max(len(rows), 1) + 1.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.axis("off")
    ax.set_title(label("kpi.chart.people_title"), fontfamily=font["family"])
    header = [label(f"kpi.chart.{k}") for k in ("person", "reminders", "claim_median", "claim_p90", "pay_rate",
                                                 "recovered_short")]
    table = ax.table(cellText=rows or [["—"] * 6], colLabels=header, loc="center")
    for cell in table.get_celld().values():
        cell.get_text().set_fontfamily(font["family"])
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    return _png(fig)


def report_chart(report: dict[str, Any], label) -> bytes:
    """A /kpi report as one picture: each standard's achieved % against its target."""
    stds = [s for s in report["standards"] if s.get("kind") != "rate" or s.get("direction") != "at_most"]
    fig, font = _figure(9, 0.45 * max(len(stds), 1) + 1.4)
    ax = fig.add_subplot(1, 1, 1)
    names = [s["name"] for s in stds]
    values = [s["achieved"] if s["achieved"] is not None else 0 for s in stds]
    ys = list(range(len(stds)))
    if stds:
        ax.barh(ys, values, color=["tab:green" if s["met"] else ("tab:red" if s["met"] is False else "tab:gray")
                                   for s in stds], alpha=0.7)
        targets = [(y, s["target"]) for y, s in zip(ys, stds) if s.get("target") is not None]
        if targets:
            ax.scatter([t for _, t in targets], [y for y, _ in targets], marker="|", s=300, color="black",
                       label=label("kpi.chart.target"))
            ax.legend(prop={"family": font["family"], "size": 8}, loc="lower right")
        ax.set_yticks(ys, names)
        ax.invert_yaxis()
    else:
        ax.text(0.5, 0.5, label("kpi.chart.no_data"), ha="center", fontfamily=font["family"])
    ax.set_xlim(0, 105)
    ax.set_xlabel(label("kpi.chart.achieved"))
    ax.set_title(label("kpi.chart.report_title", first=report["period"]["from"], last=report["period"]["to"]))
    ax.tick_params(labelsize=8)
    _apply_font(ax, font)
    return _png(fig)


def _fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}"


def render_pack(pack: dict[str, Any], renderer) -> dict[str, bytes]:
    """The Monday chart set: {name: PNG bytes}."""
    label = renderer.label
    shift_label = getattr(renderer, "shift_label", lambda s: s)
    return {
        "standards": standards_chart(pack["weeks"], pack["standards_weekly"], label),
        "payment": payment_chart(pack["payment_per_day"], label),
        "claims": claim_chart(pack["claim_minutes_by_shift"], label, shift_label),
        "people": people_table(pack["people"], label),
    }
