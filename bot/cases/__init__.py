"""After-sales cases with approvals (issue 18): the feature's public face.

Other features and the Telegram layer import from here only:
- `CaseService` (bot/cases/service.py): open, edit, assign, add_evidence, add_note, move, reopen,
  submit, withdraw, nudge, approve, reject, transfer, view, search, history, open_cases_of,
  open_cases_of_shift, pending_for, due_work / mark_done (the ticker), script_values.
- `Submission`, `Decision`, `DueWork`: what those return for the handler to send.
- pure rules (bot/cases/approval.py): `ApprovalPolicy`, `approval_reasons`, `approval_level`,
  `choose_approver`, `approval_timing`, `add_shift_time`, `due_actions`.
- `case_stats` (over a `CaseStore`) for /kpi; `write_xlsx` / `export_cases` for /cases export.
"""

from bot.cases.approval import (
    ApprovalPolicy,
    ApprovalTiming,
    add_shift_time,
    approval_level,
    approval_reasons,
    approval_timing,
    choose_approver,
    due_actions,
)
from bot.cases.cli import export_cases
from bot.cases.model import (
    MOVES,
    PROBLEMS,
    RESOLUTIONS,
    RESPONSIBLE,
    SHIPPING_PAYERS,
    STATES,
    SUBMITTABLE,
    UNFINISHED,
    Approval,
    Case,
    Evidence,
    HistoryEntry,
    format_amount,
    parse_amount,
)
from bot.cases.service import CaseQuery, CaseService, Decision, DueWork, Submission, parse_query
from bot.cases.stats import CaseStats, case_stats
from bot.cases.store import CaseStore

__all__ = [
    "MOVES", "SUBMITTABLE", "export_cases", "PROBLEMS", "RESOLUTIONS", "RESPONSIBLE", "SHIPPING_PAYERS", "STATES", "UNFINISHED",
    "Approval", "ApprovalPolicy", "ApprovalTiming", "Case", "CaseQuery", "CaseService", "CaseStats", "CaseStore",
    "Decision", "DueWork", "Evidence", "HistoryEntry", "Submission", "add_shift_time", "approval_level",
    "approval_reasons", "approval_timing", "case_stats", "choose_approver", "due_actions",
    "format_amount", "parse_amount", "parse_query",
]
