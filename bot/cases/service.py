"""The cases service: every rule of a case's life, for the Telegram layer and the CLI alike.

No Telegram here: callers pass `Person`s (bot.people) and plain values; refusals are `UserError`
codes whose Chinese text is `errors.<code>` in templates/labels/cases.yaml. Each change is one
transaction that also writes its line of history.

Who may do what:
- see / edit / move a case: the person who opened it, its owner, anyone asked to approve it, and
  every supervisor or admin; other agents get `case_forbidden`.
- decide a request: its approver, or any admin (admins receive escalations); never the requester.
- withdraw / 催办 a request: its requester.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from bot.cases import approval as rules
from bot.cases.model import (
    APPROVAL_FIELDS, APPROVED, CLOSED, DONE, EDITABLE, EVIDENCE_KINDS, FINISHED, OPEN, PENDING, PROBLEMS,
    PROCEEDING, REJECTED, RESOLUTIONS, RESPONSIBLE, SHIPPING_PAYERS, SHORT_LIMIT, SUBMITTABLE, TEXT_LIMIT,
    Approval, Case, Evidence, HistoryEntry, check_move, format_amount, parse_amount,
)
from bot.cases.store import CaseStore
from bot.clock import Clock
from bot.db import Database
from bot.people import PeopleService, Person, Role, UserError
from bot.shifts import Shift, shifts_on

#: A requester may 催办 the same request at most once in this time.
NUDGE_GAP = timedelta(minutes=10)
ORDER_NO_LIMIT = 64
PLATFORM_CODES = ("taobao", "douyin", "pinduoduo", "jd", "other")


@dataclass(frozen=True)
class Submission:
    """A request just submitted: whom to tell and when (the handler sends at once unless
    `timing.waits_for_shift`, then the ticker delivers at `timing.deliver_at` and the requester is
    told that moment)."""

    case: Case
    approval: Approval
    approver: Person
    timing: rules.ApprovalTiming


@dataclass(frozen=True)
class Decision:
    """An approval decided: the requester is told at once (with the next script to send)."""

    case: Case
    approval: Approval
    requester: Person | None


@dataclass(frozen=True)
class DueWork:
    """One pending request with what the ticker must do now ('deliver', 'remind', 'escalate')."""

    approval: Approval
    actions: tuple[str, ...]


@dataclass(frozen=True)
class CaseQuery:
    """A parsed `/cases` argument (see `parse_query`)."""

    mine: bool = False
    unfinished: bool = False
    case_id: int | None = None
    keyword: str | None = None
    opened_from: datetime | None = None
    opened_to: datetime | None = None


_DATE_FULL = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DATE_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_DATE_SHORT = re.compile(r"^(\d{1,2})-(\d{1,2})$")
_CASE_NO = re.compile(r"^[#＃](\d{1,9})$")
MINE_WORDS = ("mine", "我的")
OPEN_WORDS = ("open", "未结", "进行中")


def parse_query(text: str, today: date, tz: tzinfo) -> CaseQuery:
    """`/cases` words: mine|我的, open|未结, #12 (case number), a date (2026-11-25, 11-25, 2026-11),
    anything else a keyword (单号, buyer, item, description or notes). Words combine: `mine open`."""
    query = CaseQuery()
    words = []
    for word in text.split():
        low = word.casefold()
        if low in MINE_WORDS:
            query = replace(query, mine=True)
        elif low in OPEN_WORDS:
            query = replace(query, unfinished=True)
        elif match := _CASE_NO.match(word):
            query = replace(query, case_id=int(match.group(1)))
        elif (span := _date_span(word, today)) is not None:
            start, end = span
            query = replace(
                query,
                opened_from=datetime.combine(start, time(0), tz),
                opened_to=datetime.combine(end, time(0), tz),
            )
        else:
            words.append(word)
    if words:
        query = replace(query, keyword=" ".join(words)[:SHORT_LIMIT])
    return query


def _date_span(word: str, today: date) -> tuple[date, date] | None:
    try:
        if m := _DATE_FULL.match(word):
            day = date(int(m[1]), int(m[2]), int(m[3]))
            return day, day + timedelta(days=1)
        if m := _DATE_MONTH.match(word):
            first = date(int(m[1]), int(m[2]), 1)
            return first, (first + timedelta(days=32)).replace(day=1)
        if m := _DATE_SHORT.match(word):
            day = date(today.year, int(m[1]), int(m[2]))
            return day, day + timedelta(days=1)
    except ValueError:
        raise UserError("case_bad_date", value=word) from None
    return None


def _text(value: object, limit: int, name: str) -> str:
    text = "" if value is None else str(value).strip()
    if len(text) > limit:
        raise UserError("case_text_too_long", field=name, limit=limit, length=len(text))
    return text


def _choice(value: object, choices: Sequence[str], code: str, *, optional: bool = True) -> str | None:
    if value is None or value == "":
        if optional:
            return None
        raise UserError(code, value="")
    if value not in choices:
        raise UserError(code, value=str(value)[:30])
    return str(value)


def clean_field(name: str, value: Any) -> Any:
    """Check and normalise one editable field; bad input raises a UserError naming the problem."""
    if name not in EDITABLE:
        raise UserError("case_bad_field", field=name)
    if name == "problem":
        return _choice(value, PROBLEMS, "case_bad_problem", optional=False)
    if name == "resolution":
        return _choice(value, RESOLUTIONS, "case_bad_resolution")
    if name == "shipping_payer":
        return _choice(value, SHIPPING_PAYERS, "case_bad_payer")
    if name == "responsible":
        return _choice(value, RESPONSIBLE, "case_bad_responsible")
    if name == "platform":
        return _choice(value, PLATFORM_CODES, "case_bad_platform") or ""
    if name == "amount_cents":
        if value is None or value == "":
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise UserError("case_bad_amount", value=format_amount(value))
            return value
        return parse_amount(value)
    if name == "needs_supervisor":
        return bool(value)
    if name == "responsible_person":
        return None if value is None else int(value)
    if name == "due_at":
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise UserError("case_bad_due")
        return value
    if name == "order_no":
        return _text(value, ORDER_NO_LIMIT, name).replace(" ", "")
    limit = TEXT_LIMIT if name in ("description", "notes", "buyer_address") else SHORT_LIMIT
    return _text(value, limit, name)


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class CaseService:
    def __init__(
        self, db: Database, clock: Clock, people: PeopleService, shifts: Sequence[Shift], tz: tzinfo,
        policy: Mapping[str, Any] | rules.ApprovalPolicy,
    ) -> None:
        self.db = db
        self.store = CaseStore(db)
        self.clock = clock
        self.people = people
        self.shifts = tuple(shifts)
        self.tz = tz
        self.policy = policy if isinstance(policy, rules.ApprovalPolicy) else rules.ApprovalPolicy.from_policy(policy)

    def set_policy(self, policy: Mapping[str, Any]) -> None:
        """After /kb_reload: the new shop policy's approval options (ValueError keeps the old)."""
        self.policy = rules.ApprovalPolicy.from_policy(policy)

    # -- reading -----------------------------------------------------------------------------------

    async def get(self, case_id: int) -> Case | None:
        return await self.store.get(case_id)

    async def view(self, actor: Person, case_id: int) -> Case:
        """The case for its card, if `actor` may see it."""
        case = await self._require(case_id)
        await self._require_party(actor, case)
        return case

    async def may_see(self, person: Person, case: Case) -> bool:
        if not person.active:
            return False
        if person.role >= Role.SUPERVISOR or person.tg_id in (case.owner, case.opened_by):
            return True
        return any(person.tg_id in (a.approver, a.requester) for a in await self.store.approvals(case.id))

    async def history(self, actor: Person, case_id: int) -> list[HistoryEntry]:
        await self.view(actor, case_id)
        return await self.store.history(case_id)

    async def search(self, actor: Person, text: str = "", *, limit: int = 50) -> list[Case]:
        """`/cases [mine|open|单号|关键词|日期]`; agents see only cases they have a part in."""
        today = self.clock.now().astimezone(self.tz).date()
        query = parse_query(text, today, self.tz)
        if query.case_id is not None:
            case = await self.store.get(query.case_id, with_evidence=False)
            return [case] if case is not None and await self.may_see(actor, case) else []
        party = None if actor.role >= Role.SUPERVISOR else actor.tg_id
        return await self.store.search(
            owner=actor.tg_id if query.mine else None, party=party, unfinished=query.unfinished,
            keyword=query.keyword, opened_from=query.opened_from, opened_to=query.opened_to, limit=limit,
        )

    async def open_cases_of(self, owner: int) -> list[Case]:
        """Unfinished cases owned by a person, oldest first: for the end-of-shift prompt and, still
        unresolved, the next shift's handover digest (one line each, linking the card)."""
        return sorted(await self.store.search(owner=owner, unfinished=True), key=lambda c: c.id)

    async def open_cases_of_shift(self, shift: str) -> list[Case]:
        """Unfinished cases whose owner works the given shift (the handover digest of that shift)."""
        found = []
        for person in await self.people.all(active_only=False):
            if person.shift == shift:
                found += await self.open_cases_of(person.tg_id)
        return sorted(found, key=lambda c: c.id)

    async def approval(self, approval_id: int) -> Approval | None:
        """One request (any state), for the handler that shows or re-sends it."""
        return await self.store.approval(approval_id)

    async def pending_for(self, approver: int) -> list[Approval]:
        return await self.store.pending_approvals(approver)

    def needs_approval(self, case: Case) -> tuple[str, ...]:
        return rules.approval_reasons(
            self.policy, problem=case.problem, resolution=case.resolution,
            amount_cents=case.amount_cents, needs_supervisor=case.needs_supervisor,
        )

    def script_values(self, case: Case) -> dict[str, str]:
        """Variables for the script sent after a decision (e.g. the compensation script's amount)."""
        return {
            "case_no": str(case.id), "order_no": case.order_no, "platform": case.platform, "shop": case.shop,
            "amount": case.amount or "", "item": case.item,
        }

    # -- opening and editing ----------------------------------------------------------------------

    async def open_case(
        self, actor: Person, *, order_no: str = "", problem: str = "other", description: str = "",
        source: str = "command", platform: str | None = None, **fields: Any,
    ) -> Case:
        """Open a case (from /case, a script's 登记售后, an order card or a reminder). With an order
        number of a stored order, the order is linked and its platform, shop, buyer and item fill
        what the caller left empty; without one (chat-only buyer) the case stands alone."""
        self._require_active(actor)
        values: dict[str, Any] = {
            "order_no": clean_field("order_no", order_no),
            "problem": clean_field("problem", problem),
            "description": clean_field("description", description),
            "platform": clean_field("platform", platform) if platform else "",
        }
        for name, value in fields.items():
            if name in ("order_no", "problem", "description", "platform"):
                continue
            values[name] = clean_field(name, value)
        if values["order_no"]:
            order = await self._find_order(values["order_no"], values["platform"] or None)
            if order is not None:
                values["order_id"] = order.id
                values["platform"] = values["platform"] or order.platform
                for name, attr in (("shop", "shop"), ("buyer", "buyer"), ("item", "item_title")):
                    if not values.get(name):
                        values[name] = getattr(order, attr) or ""
        now = self.clock.now()
        values.update(
            state=OPEN, opened_by=actor.tg_id, owner=actor.tg_id, opened_at=now, updated_at=now,
            source=_text(source, SHORT_LIMIT, "source"),
        )
        async with self.db.transaction(on_loop=True) as conn:
            case_id = await self.store.insert_case(conn, values)
            await self.store.add_history(conn, case_id, now, actor.tg_id, "opened", "state", "", OPEN, values["source"])
        return await self._require(case_id)

    async def edit(self, actor: Person, case_id: int, **changes: Any) -> Case:
        """Change fields (see model.EDITABLE), each change a line of history. While a request is
        pending the fields it is about are frozen (withdraw, edit, resubmit); after an approval a
        change that needs approval again puts the case back to 处理中."""
        cleaned = {name: clean_field(name, value) for name, value in changes.items()}
        now = self.clock.now()
        async with self.db.transaction(on_loop=True) as conn:
            case = await self._case_in(conn, case_id)
            await self._require_party(actor, case)
            if case.finished:
                raise UserError("case_finished", no=case.id)
            diff = {n: v for n, v in cleaned.items() if getattr(case, n) != v}
            if not diff:
                return case
            if case.state == PENDING and APPROVAL_FIELDS & diff.keys():
                raise UserError("case_request_pending", no=case.id)
            update: dict[str, Any] = dict(diff, updated_at=now)
            for name, value in diff.items():
                await self.store.add_history(conn, case.id, now, actor.tg_id, "edit", name, _show(getattr(case, name)), _show(value))
            edited = replace(case, **diff)
            if (
                APPROVAL_FIELDS & diff.keys()
                and case.state in (APPROVED, *PROCEEDING)
                and self.needs_approval(edited)
                and not self._covered(edited, case.approval)
            ):
                update["state"] = OPEN
                await self.store.add_history(conn, case.id, now, actor.tg_id, "move", "state", case.state, OPEN, "approval_void")
            await self.store.update_case(conn, case.id, update)
        return await self._require(case_id)

    async def assign(self, actor: Person, case_id: int, new_owner: Person) -> Case:
        """Hand the case to someone else (the owner or a supervisor may)."""
        if not new_owner.active:
            raise UserError("case_person_inactive", name=new_owner.name)
        now = self.clock.now()
        async with self.db.transaction(on_loop=True) as conn:
            case = await self._case_in(conn, case_id)
            if not (actor.active and (actor.tg_id == case.owner or actor.role >= Role.SUPERVISOR)):
                raise UserError("case_forbidden", no=case.id)
            if case.owner == new_owner.tg_id:
                return case
            await self.store.update_case(conn, case.id, {"owner": new_owner.tg_id, "updated_at": now})
            await self.store.add_history(conn, case.id, now, actor.tg_id, "edit", "owner", str(case.owner), str(new_owner.tg_id))
        return await self._require(case_id)

    async def add_evidence(
        self, actor: Person, case_id: int, kind: str, file_id: str, file_unique_id: str = "", caption: str = "",
    ) -> Evidence:
        """A photo or file sent to the bot for the case, kept by its Telegram file id. Allowed on a
        pending request too: evidence adds to what the approver sees, it does not change the ask."""
        if kind not in EVIDENCE_KINDS:
            raise UserError("case_bad_evidence", value=kind)
        if not file_id:
            raise UserError("case_bad_evidence", value="")
        caption = _text(caption, SHORT_LIMIT, "caption")
        now = self.clock.now()
        async with self.db.transaction(on_loop=True) as conn:
            case = await self._case_in(conn, case_id)
            await self._require_party(actor, case)
            if case.finished:
                raise UserError("case_finished", no=case.id)
            evidence_id = await self.store.add_evidence(conn, case.id, kind, file_id, file_unique_id, caption, actor.tg_id, now)
            await self.store.update_case(conn, case.id, {"updated_at": now})
            await self.store.add_history(conn, case.id, now, actor.tg_id, "evidence", "", "", kind, caption)
        return next(e for e in await self.store.evidence(case_id) if e.id == evidence_id)

    async def add_note(self, actor: Person, case_id: int, text: str) -> Case:
        """Append a line to the notes (history keeps who wrote it and when)."""
        text = _text(text, SHORT_LIMIT, "notes")
        if not text:
            raise UserError("case_empty_text")
        case = await self._require(case_id)
        notes = f"{case.notes}\n{text}" if case.notes else text
        return await self.edit(actor, case_id, notes=notes)

    # -- the state machine ------------------------------------------------------------------------

    async def move(self, actor: Person, case_id: int, target: str) -> Case:
        """处理中 / 已批准 → 待买家 / 待仓库 → 已完成, or 已关闭 from any unfinished state (see
        model.MOVES). Going on (待买家, 待仓库, 已完成) with a resolution that needs approval needs
        the approval first (`case_needs_approval`)."""
        now = self.clock.now()
        async with self.db.transaction(on_loop=True) as conn:
            case = await self._case_in(conn, case_id)
            await self._require_party(actor, case)
            if case.state == PENDING and target == CLOSED:
                raise UserError("case_request_pending", no=case.id)
            check_move(case.state, target)
            if target in PROCEEDING:
                reasons = self.needs_approval(case)
                if reasons and not self._covered(case, case.approval):
                    raise UserError("case_needs_approval", no=case.id, reasons=list(reasons))
                if case.resolution in ("compensation", "refund_only") and case.amount_cents is None and target == DONE:
                    raise UserError("case_amount_required", no=case.id)
            update: dict[str, Any] = {"state": target, "updated_at": now}
            if target in FINISHED:
                update["finished_at"] = now
            await self.store.update_case(conn, case.id, update)
            await self.store.add_history(conn, case.id, now, actor.tg_id, "move", "state", case.state, target)
        return await self._require(case_id)

    async def reopen(self, actor: Person, case_id: int, reason: str) -> Case:
        """已完成 / 已关闭 → 处理中, with a reason (required)."""
        reason = _text(reason, SHORT_LIMIT, "reason")
        if not reason:
            raise UserError("case_reason_required")
        now = self.clock.now()
        async with self.db.transaction(on_loop=True) as conn:
            case = await self._case_in(conn, case_id)
            await self._require_party(actor, case)
            if not case.finished:
                raise UserError("case_not_finished", no=case.id)
            await self.store.update_case(conn, case.id, {"state": OPEN, "finished_at": None, "updated_at": now})
            await self.store.add_history(conn, case.id, now, actor.tg_id, "reopen", "state", case.state, OPEN, reason)
        return await self._require(case_id)

    # -- approvals --------------------------------------------------------------------------------

    async def submit(self, actor: Person, case_id: int, *, mark: bool = False) -> Submission:
        """Ask for approval of the case's current resolution and amount. `mark` is the agent's
        "需主管": it needs a supervisor whatever the rules say. A case whose plan needs no approval
        is refused (`case_no_approval_needed`): the agent goes ahead.

        The approver is a supervisor on duty when the request is delivered (now, or off hours the
        next shift's start), else any supervisor; above admin_approval_above an admin."""
        now = self.clock.now()
        people = await self.people.all(active_only=True)
        timing = rules.approval_timing(self.policy, self.shifts, now, self.tz)
        # Off hours the request waits for the next shift: its supervisor on duty is the one to ask.
        working = set(shifts_on(self.shifts, timing.deliver_at, self.tz))
        on_duty = {p.tg_id for p in people if p.shift in working}
        async with self.db.transaction(on_loop=True) as conn:
            case = await self._case_in(conn, case_id)
            await self._require_party(actor, case)
            if case.state == PENDING:
                raise UserError("case_request_pending", no=case.id)
            if case.state not in SUBMITTABLE:
                raise UserError("case_bad_move", state=case.state, target=PENDING)
            if mark and not case.needs_supervisor:
                await self.store.update_case(conn, case.id, {"needs_supervisor": 1})
                await self.store.add_history(conn, case.id, now, actor.tg_id, "edit", "needs_supervisor", "0", "1")
                case = replace(case, needs_supervisor=True)
            if case.resolution is None:
                raise UserError("case_resolution_required", no=case.id)
            if case.resolution in ("compensation", "refund_only") and case.amount_cents is None:
                raise UserError("case_amount_required", no=case.id)
            reasons = self.needs_approval(case)
            if not reasons:
                raise UserError("case_no_approval_needed", no=case.id)
            level = rules.approval_level(self.policy, case.amount_cents)
            approver = rules.choose_approver(people, on_duty, level, actor.tg_id)
            if approver is None:
                raise UserError("case_no_approver", level=level)
            approval_id = await self.store.insert_approval(conn, {
                "case_id": case.id, "requester": actor.tg_id, "approver": approver.tg_id, "level": level,
                "reasons": ",".join(reasons), "resolution": case.resolution, "amount_cents": case.amount_cents,
                "state": "pending", "submitted_at": now, "deliver_at": timing.deliver_at,
                "delivered_at": None if timing.waits_for_shift else now,
                "remind_at": timing.remind_at, "escalate_at": timing.escalate_at,
            })
            await self.store.update_case(conn, case.id, {"state": PENDING, "updated_at": now})
            await self.store.add_history(
                conn, case.id, now, actor.tg_id, "submit", "state", case.state, PENDING,
                f"approval={approval_id} approver={approver.tg_id} level={level} reasons={','.join(reasons)}"
                f" amount={case.amount or ''}",
            )
        case = await self._require(case_id)
        assert case.approval is not None
        return Submission(case, case.approval, approver, timing)

    async def _own_request(self, conn, case: Case, actor: Person) -> Approval:
        """The case's pending request, which only its requester may withdraw or nudge."""
        pending = await self.store.pending_approval_in(conn, case.id)
        if pending is None:
            raise UserError("case_no_request", no=case.id)
        if actor.tg_id != pending.requester:
            raise UserError("case_not_requester", no=case.id)
        return pending

    async def withdraw(self, actor: Person, case_id: int) -> Case:
        """The requester takes a pending request back: the case returns to 处理中 to be edited and
        resubmitted (as a new request)."""
        now = self.clock.now()
        async with self.db.transaction(on_loop=True) as conn:
            case = await self._case_in(conn, case_id)
            pending = await self._own_request(conn, case, actor)
            await self.store.update_approval(conn, pending.id, {"state": "withdrawn", "decided_at": now})
            await self.store.update_case(conn, case.id, {"state": OPEN, "updated_at": now})
            await self.store.add_history(conn, case.id, now, actor.tg_id, "withdraw", "state", PENDING, OPEN, f"approval={pending.id}")
        return await self._require(case_id)

    async def nudge(self, actor: Person, case_id: int) -> Approval:
        """催办: the requester asks again (the handler messages the approver). At most once per NUDGE_GAP."""
        now = self.clock.now()
        async with self.db.transaction(on_loop=True) as conn:
            case = await self._case_in(conn, case_id)
            pending = await self._own_request(conn, case, actor)
            if pending.nudged_at is not None and now - pending.nudged_at < NUDGE_GAP:
                wait = NUDGE_GAP - (now - pending.nudged_at)
                raise UserError("case_nudge_too_soon", minutes=max(1, int(wait.total_seconds() // 60)))
            await self.store.update_approval(conn, pending.id, {"nudged_at": now})
            await self.store.add_history(conn, case.id, now, actor.tg_id, "nudge", "", "", "", f"approval={pending.id}")
        approval = await self.store.approval(pending.id)
        assert approval is not None
        return approval

    async def approve(self, actor: Person, approval_id: int, note: str = "") -> Decision:
        return await self._decide(actor, approval_id, "approved", _text(note, SHORT_LIMIT, "reason"))

    async def reject(self, actor: Person, approval_id: int, reason: str) -> Decision:
        """驳回 needs a reason (a common one from labels cases.reject_reasons, or typed)."""
        reason = _text(reason, SHORT_LIMIT, "reason")
        if not reason:
            raise UserError("case_reason_required")
        return await self._decide(actor, approval_id, "rejected", reason)

    async def _decide(self, actor: Person, approval_id: int, verdict: str, reason: str) -> Decision:
        now = self.clock.now()
        async with self.db.transaction(on_loop=True) as conn:
            approval = await self._approval_in(conn, approval_id)
            self._require_decider(actor, approval)
            state = APPROVED if verdict == "approved" else REJECTED
            await self.store.update_approval(conn, approval.id, {
                "state": verdict, "decided_by": actor.tg_id, "decided_at": now, "decision_reason": reason,
            })
            await self.store.update_case(conn, approval.case_id, {"state": state, "updated_at": now})
            await self.store.add_history(
                conn, approval.case_id, now, actor.tg_id, "approve" if verdict == "approved" else "reject",
                "state", PENDING, state, reason,
            )
        case = await self._require(approval.case_id)
        decided = await self.store.approval(approval_id)
        assert decided is not None
        return Decision(case, decided, await self.people.get(approval.requester))

    async def transfer(self, actor: Person, approval_id: int, to: Person) -> Approval:
        """转交: the approver (or an admin) passes the request to another approver of the same level
        or higher; the reminder clock starts again for the new approver."""
        now = self.clock.now()
        async with self.db.transaction(on_loop=True) as conn:
            approval = await self._approval_in(conn, approval_id)
            self._require_decider(actor, approval, transferring=True)
            if to.tg_id == approval.requester:
                raise UserError("case_self_approval")
            if to.tg_id == approval.approver:
                raise UserError("case_same_approver", name=to.name)
            if not to.active or not rules.may_approve_level(to.role, approval.level):
                raise UserError("case_not_an_approver", name=to.name, level=approval.level)
            timing = rules.approval_timing(self.policy, self.shifts, now, self.tz)
            await self.store.update_approval(conn, approval.id, {
                "approver": to.tg_id, "deliver_at": timing.deliver_at,
                "delivered_at": None if timing.waits_for_shift else now,
                "remind_at": timing.remind_at, "reminded_at": None,
                "escalate_at": timing.escalate_at, "escalated_at": None,
            })
            await self.store.add_history(
                conn, approval.case_id, now, actor.tg_id, "transfer", "approver", str(approval.approver), str(to.tg_id),
                f"approval={approval.id}",
            )
        moved = await self.store.approval(approval_id)
        assert moved is not None
        return moved

    async def reroute_approvals_of(self, tg_id: int) -> list[tuple[Approval, Person]]:
        """For offboarding (bot/offboarding.py, after deactivation): every request pending with
        this person goes to another approver chosen by the usual rule (never the requester), its
        reminder clock restarting. Requests nobody else can approve stay and are escalated to the
        admins by the ticker as usual. Returns (request, new approver) for the handler to notify."""
        moved = []
        now = self.clock.now()
        people = [p for p in await self.people.all(active_only=True) if p.tg_id != tg_id]
        timing = rules.approval_timing(self.policy, self.shifts, now, self.tz)
        working = set(shifts_on(self.shifts, timing.deliver_at, self.tz))
        on_duty = {p.tg_id for p in people if p.shift in working}
        for approval in await self.store.pending_approvals(tg_id):
            approver = rules.choose_approver(people, on_duty, approval.level, approval.requester)
            if approver is None:
                continue
            async with self.db.transaction(on_loop=True) as conn:
                changed = await self.store.update_approval(conn, approval.id, {
                    "approver": approver.tg_id, "deliver_at": timing.deliver_at,
                    "delivered_at": None if timing.waits_for_shift else now,
                    "remind_at": timing.remind_at, "reminded_at": None,
                    "escalate_at": timing.escalate_at, "escalated_at": None,
                })
                if not changed:
                    continue
                await self.store.add_history(
                    conn, approval.case_id, now, None, "transfer", "approver", str(tg_id), str(approver.tg_id),
                    f"approval={approval.id} deactivated",
                )
            rerouted = await self.store.approval(approval.id)
            assert rerouted is not None
            moved.append((rerouted, approver))
        return moved

    # -- the ticker's side ------------------------------------------------------------------------

    async def due_work(self) -> list[DueWork]:
        """Pending requests with something due now (deliver at shift start, remind, escalate)."""
        now = self.clock.now()
        work = []
        for approval in await self.store.pending_approvals():
            actions = rules.due_actions(approval, now)
            if actions:
                work.append(DueWork(approval, tuple(actions)))
        return work

    async def mark_done(self, approval_id: int, action: str) -> bool:
        """Record that the ticker delivered / reminded / escalated (after sending). False when the
        request is no longer pending or it was already recorded."""
        column = {"deliver": "delivered_at", "remind": "reminded_at", "escalate": "escalated_at"}[action]
        now = self.clock.now()
        async with self.db.transaction(on_loop=True) as conn:
            approval = await self._approval_in(conn, approval_id, must_be_pending=False)
            if not approval.pending or getattr(approval, column) is not None:
                return False
            await self.store.update_approval(conn, approval_id, {column: now})
            if action != "deliver":
                await self.store.add_history(conn, approval.case_id, now, None, action, "", "", "", f"approval={approval_id}")
        return True

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _covered(case: Case, approval: Approval | None) -> bool:
        """Whether an approved request covers the case's current plan: same problem rules apply to
        the same resolution, and the amount is no more than what was approved."""
        if approval is None or approval.state != "approved" or approval.resolution != case.resolution:
            return False
        return (case.amount_cents or 0) <= (approval.amount_cents or 0)

    async def _find_order(self, order_no: str, platform: str | None):
        from bot.orders import find_orders  # the orders feature's public face

        found = await find_orders(self.db, order_no)
        if platform:
            found = [o for o in found if o.platform == platform]
        return found[0] if found else None

    @staticmethod
    def _require_active(actor: Person) -> None:
        if not actor.active:
            raise UserError("case_forbidden", no="")

    async def _require(self, case_id: int) -> Case:
        case = await self.store.get(case_id)
        if case is None:
            raise UserError("case_not_found", no=case_id)
        return case

    async def _case_in(self, conn, case_id: int) -> Case:
        case = await self.store.case_in(conn, case_id)
        if case is None:
            raise UserError("case_not_found", no=case_id)
        return case

    async def _approval_in(self, conn, approval_id: int, *, must_be_pending: bool = True) -> Approval:
        approval = await self.store.approval_in(conn, approval_id)
        if approval is None:
            raise UserError("case_no_request", no="")
        if must_be_pending and not approval.pending:
            raise UserError("case_request_closed", no=approval.case_id, state=approval.state)
        return approval

    async def _require_party(self, actor: Person, case: Case) -> None:
        if not await self.may_see(actor, case):
            raise UserError("case_forbidden", no=case.id)

    @staticmethod
    def _require_decider(actor: Person, approval: Approval, *, transferring: bool = False) -> None:
        if actor.tg_id == approval.requester:
            raise UserError("case_self_approval")
        if not actor.active:
            raise UserError("case_not_approver", no=approval.case_id)
        if actor.tg_id == approval.approver and rules.may_approve_level(actor.role, approval.level):
            return
        if actor.role >= Role.ADMIN:
            return
        raise UserError("case_not_approver", no=approval.case_id)
