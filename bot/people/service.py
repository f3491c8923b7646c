"""People, roles and invitations. No Telegram here: callers pass ids and names; the SQL is in
bot/people/store.py."""

from __future__ import annotations

import secrets
import sqlite3
import time
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import IntEnum

from bot.clock import Clock, to_ts
from bot.db import Database
from bot.people.store import PeopleStore
from bot.shifts import Shift, shifts_on

INVITE_TTL = timedelta(hours=24)
#: How long a person (or the list of everyone) read from the database is reused without asking it
#: again (issue 13, CPU per update: the guard looks the sender up on every update). Every change
#: made through PeopleService forgets what was kept at once; this only bounds how long a change
#: made behind its back (hand-written SQL, another process) can go unseen. Code that writes `users`
#: itself (tests seeding people) calls `PeopleService.forget()`.
CACHE_SECONDS = 60.0
#: People kept at most (each one looked up by id); beyond it the cache starts again.
CACHE_PEOPLE_MAX = 4096
JOIN_FAILURE_WINDOW = timedelta(minutes=10)
JOIN_FAILURE_LIMIT = 5
DISPLAY_NAME_LIMIT = 20
#: Characters that draw nothing although Unicode does not class them as format or space.
_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")


class Role(IntEnum):
    """Ordered so that `person.role >= Role.SUPERVISOR` reads as the rule it is."""

    AGENT = 1
    SUPERVISOR = 2
    ADMIN = 3

    @property
    def code(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise UserError("bad_role", value=text) from None


def clean_display_name(text: str) -> str:
    """The name as it will be shown: control and format characters (zero-width, bidi overrides,
    BOM) removed, runs of whitespace made one space. Empty when nothing visible is left."""
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Cs", "Co", "Cn") or ch in _BLANKS:
            if category == "Cc" and ch.isspace():
                kept.append(" ")  # a tab or line break separates words like a space
            continue
        kept.append(" " if category in ("Zs", "Zl", "Zp") else ch)
    name = " ".join("".join(kept).split())
    if not any(not unicodedata.category(ch).startswith(("Z", "M")) for ch in name):
        return ""  # only spaces and combining marks
    return name


def name_key(name: str) -> str:
    """What makes two names the same to a reader: NFKC (full-width, ligatures) and case folding."""
    return unicodedata.normalize("NFKC", clean_display_name(name)).casefold()


def may_invite(inviter_role: Role, role: Role) -> bool:
    """Supervisors invite agents; admins invite agents and supervisors; nobody invites admins."""
    if role == Role.ADMIN:
        return False
    return inviter_role >= (Role.ADMIN if role == Role.SUPERVISOR else Role.SUPERVISOR)


class UserError(Exception):
    """A refusal the user caused and can fix; `code` names the message template to show."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Person:
    tg_id: int
    username: str | None
    full_name: str
    display_name: str | None
    employee_no: str | None
    role: Role
    shift: str | None
    active: bool
    blocked_at: int | None
    created_at: int

    @property
    def name(self) -> str:
        return self.display_name or self.full_name or (f"@{self.username}" if self.username else str(self.tg_id))

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Person:
        return cls(
            tg_id=row["tg_id"],
            username=row["username"],
            full_name=row["full_name"],
            display_name=row["display_name"],
            employee_no=row["employee_no"],
            role=Role[row["role"].upper()],
            shift=row["shift"],
            active=bool(row["active"]),
            blocked_at=row["blocked_at"],
            created_at=row["created_at"],
        )


@dataclass(frozen=True)
class Invite:
    code: str
    role: Role
    expires_at: int


class PeopleService:
    def __init__(self, db: Database, clock: Clock, admin_ids: Sequence[int], shifts: Sequence[Shift], tz) -> None:
        self.db = db
        self.clock = clock
        self.admin_ids = frozenset(admin_ids)
        self.shifts = tuple(shifts)
        self.tz = tz
        self.store = PeopleStore(db)
        # The cache (see CACHE_SECONDS): tg_id -> (expires, Person); active_only -> (expires, people).
        self._people: dict[int, tuple[float, Person]] = {}
        self._lists: dict[bool, tuple[float, tuple[Person, ...]]] = {}
        self._generation = 0  # moves on every forget(): a read begun before it is not kept
        self._writing = 0  # changes under way: nothing read meanwhile is kept

    def _now(self) -> int:
        return to_ts(self.clock.now())

    def forget(self) -> None:
        """Drop every person kept from earlier reads: the next read asks the database. Called
        around each change this service makes; code that writes `users` itself must call it."""
        self._generation += 1
        self._people.clear()
        self._lists.clear()

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Around a write to `users`: forgotten before (no read during the write is kept, as it
        may see the old row or the new one) and again after (the write is committed by then)."""
        self._writing += 1
        self.forget()
        try:
            yield
        finally:
            self._writing -= 1
            self.forget()

    def _keepable(self, generation: int) -> bool:
        return generation == self._generation and not self._writing

    async def get(self, tg_id: int) -> Person | None:
        now = time.monotonic()
        kept = self._people.get(tg_id)
        if kept is not None and kept[0] > now:
            return kept[1]
        generation = self._generation
        row = await self.store.user(tg_id)
        person = Person.from_row(row) if row else None
        if person is not None and self._keepable(generation):
            if len(self._people) >= CACHE_PEOPLE_MAX:
                self._people.clear()
            self._people[tg_id] = (now + CACHE_SECONDS, person)
        return person

    async def all(self, *, active_only: bool = False) -> list[Person]:
        now = time.monotonic()
        kept = self._lists.get(active_only)
        if kept is not None and kept[0] > now:
            return list(kept[1])
        generation = self._generation
        rows = await self.store.users(active_only=active_only)
        people = [Person.from_row(r) for r in rows]
        if self._keepable(generation):
            self._lists[active_only] = (now + CACHE_SECONDS, tuple(people))
        return people

    async def with_role(self, minimum: Role, *, active_only: bool = True) -> list[Person]:
        return [p for p in await self.all(active_only=active_only) if p.role >= minimum]

    async def on_duty(self) -> list[Person]:
        """Active people whose shift is working now."""
        working = set(shifts_on(self.shifts, self.clock.now(), self.tz))
        return [p for p in await self.all(active_only=True) if p.shift in working]

    async def bootstrap_admin(self, tg_id: int, username: str | None, full_name: str) -> Person | None:
        """Users listed in KEFU_ADMIN_IDS become (or stay) active admins on /start."""
        if tg_id not in self.admin_ids:
            return None
        now = self._now()
        with self._changing():
            async with self.db.transaction() as conn:
                await self.store.make_admin(conn, tg_id, username, full_name, now)
                await self._audit(conn, tg_id, "admin_bootstrap", "")
        return await self.get(tg_id)

    async def seed_members(self, members: Sequence[dict]) -> None:
        """Store complete active members at once (the sandbox's demo team), in one transaction:
        each a dict of tg_id, username, full_name, display_name, employee_no, role (code), shift."""
        now = self._now()
        with self._changing():
            async with self.db.transaction() as conn:
                for member in members:
                    await self.store.add_member(conn, now=now, **member)

    async def touch(self, person: Person, username: str | None, full_name: str) -> None:
        """Keep Telegram names fresh and clear a 'blocked' mark once the user writes again.

        Writes only when something changed: this runs for every update, and a write would wait
        behind any long transaction (a big import) while a read does not."""
        if person.username == username and person.full_name == full_name and person.blocked_at is None:
            return
        with self._changing():
            await self.store.set_names(person.tg_id, username, full_name)

    async def create_invite(self, actor: Person, role: Role) -> Invite:
        if role == Role.ADMIN:
            raise UserError("invite_admin")
        if not actor.active or not may_invite(actor.role, role):
            raise UserError("invite_forbidden", role=role.code)
        code = secrets.token_urlsafe(12)
        now = self._now()
        expires = now + int(INVITE_TTL.total_seconds())
        async with self.db.transaction() as conn:
            await self.store.add_invite(conn, code, role.code, actor.tg_id, now, expires)
            await self._audit(conn, actor.tg_id, "invite", role.code)
        return Invite(code, role, expires)

    async def redeem(self, tg_id: int, username: str | None, full_name: str, code: str) -> Person:
        """Register the sender with the invited role; wrong codes count toward a throttle."""
        now = self._now()
        with self._changing():
            async with self.db.transaction() as conn:
                since = now - int(JOIN_FAILURE_WINDOW.total_seconds())
                if await self.store.join_failures_in(conn, tg_id, since) >= JOIN_FAILURE_LIMIT:
                    raise UserError("join_throttled", minutes=int(JOIN_FAILURE_WINDOW.total_seconds() // 60))
                existing = await self.store.user_in(conn, tg_id)
                if existing is not None and existing["active"]:
                    raise UserError("already_member")
                if existing is not None:
                    raise UserError("deactivated_rejoin")  # only an admin's /activate brings someone back
                invite = await self.store.invite_in(conn, code)
                problem = None
                if invite is None:
                    problem = "invite_unknown"
                elif invite["used_by"] is not None:
                    problem = "invite_used"
                else:
                    creator = await self.store.user_in(conn, invite["created_by"])
                    if creator is None or not creator["active"] or not may_invite(
                        Role[creator["role"].upper()], Role[invite["role"].upper()]
                    ):
                        problem = "invite_revoked"  # the inviter was deactivated or lost the right since
                    elif invite["expires_at"] <= now:
                        problem = "invite_expired"
                if problem:
                    await self.store.add_join_failure(conn, tg_id, now)
                    # The failure must be stored although the join is refused: commit, then raise.
                    error = UserError(problem)
                else:
                    error = None
                    await self.store.use_invite(conn, code, tg_id, now)
                    await self.store.make_member(conn, tg_id, username, full_name, invite["role"], invite["created_by"], now)
                    await self._audit(conn, tg_id, "join", invite["role"])
        if error:
            raise error
        person = await self.get(tg_id)
        assert person is not None
        return person

    async def find(self, ref: str) -> Person | None:
        """Look someone up by Telegram id, @username, 工号 or name (display name, else Telegram
        name). A name shared by several people, or a part of several names, is refused with the
        matches listed (UserError person_ambiguous)."""
        ref = ref.strip()
        if ref.lstrip("-").isdigit():
            found = await self.get(int(ref))
            if found:
                return found
        if ref.startswith("@"):
            row = await self.store.by_username(ref[1:])
            return Person.from_row(row) if row else None
        row = await self.store.by_employee_no(ref)
        if row:
            return Person.from_row(row)
        return await self.find_by_name(ref)

    async def find_by_name(self, ref: str) -> Person | None:
        key = name_key(ref)
        if not key or ref.lstrip("-").isdigit():
            return None
        people = await self.all()
        exact = [p for p in people if key in {name_key(p.name), name_key(p.full_name or "")}]
        matches = exact or [p for p in people if key in name_key(p.name)]
        if len(matches) > 1:
            raise UserError("person_ambiguous", ref=ref, matches=matches)
        return matches[0] if matches else None

    async def require(self, ref: str) -> Person:
        person = await self.find(ref)
        if person is None:
            raise UserError("person_not_found", ref=ref)
        return person

    async def inviter_of(self, tg_id: int) -> Person | None:
        """Who created the invitation this person joined with (None: an admin from settings)."""
        inviter = await self.store.inviter_id(tg_id)
        return await self.get(inviter) if inviter is not None else None

    async def free_employee_no(self, prefix: str = "KF") -> str:
        """An example 工号 nobody has yet (KF001, KF002, ...), for the welcome's /me hint."""
        taken = {number.upper() for number in await self.store.employee_numbers()}
        number = 1
        while f"{prefix}{number:03d}" in taken:
            number += 1
        return f"{prefix}{number:03d}"

    async def set_role(self, actor: Person, target: Person, role: Role) -> Person:
        if actor.role < Role.ADMIN:
            raise UserError("admin_only")
        if target.role == Role.ADMIN and role < Role.ADMIN:
            await self._keep_one_admin(target)
        return await self._update(actor, target, "set_role", role=role.code)

    async def set_shift(self, actor: Person, target: Person, shift: str | None) -> Person:
        if actor.role < Role.SUPERVISOR:
            raise UserError("supervisor_only")
        if shift is not None and shift not in {s.name for s in self.shifts}:
            raise UserError("bad_shift", value=shift, choices=[s.name for s in self.shifts])
        return await self._update(actor, target, "set_shift", shift=shift)

    async def set_active(self, actor: Person, target: Person, active: bool) -> Person:
        """(De)activate; deactivating also revokes the person's unused invitation codes at once."""
        if actor.role < Role.ADMIN:
            raise UserError("admin_only")
        if not active and target.role == Role.ADMIN:
            await self._keep_one_admin(target)
        updated = await self._update(actor, target, "activate" if active else "deactivate", active=int(active))
        if not active:
            await self.revoke_invites(actor, target)
        return updated

    async def revoke_invites(self, actor: Person, creator: Person) -> int:
        """End the creator's unused, unexpired codes now (they stay refused if the creator returns)."""
        now = self._now()
        async with self.db.transaction() as conn:
            revoked = await self.store.expire_open_invites(conn, creator.tg_id, now)
            if revoked:
                await self._audit(conn, actor.tg_id, "revoke_invites", f"creator={creator.tg_id} count={revoked}")
        return revoked

    async def open_invites(self, creator_id: int) -> int:
        return await self.store.open_invites(creator_id, self._now())

    async def update_profile(self, person: Person, *, display_name: str | None = None, employee_no: str | None = None) -> Person:
        changes: dict[str, object] = {}
        if display_name is not None:
            display_name = clean_display_name(display_name)
            if not display_name:
                raise UserError("display_name_empty")
            if len(display_name) > DISPLAY_NAME_LIMIT:
                raise UserError("display_name_too_long", limit=DISPLAY_NAME_LIMIT, length=len(display_name))
            key = name_key(display_name)
            if any(name_key(p.name) == key for p in await self.all(active_only=True) if p.tg_id != person.tg_id):
                raise UserError("display_name_taken", value=display_name)
            changes["display_name"] = display_name
        if employee_no is not None:
            employee_no = employee_no.strip()
            if not (1 <= len(employee_no) <= 16 and employee_no.replace("-", "").replace("_", "").isalnum()):
                raise UserError("bad_employee_no")
            if await self.store.employee_no_taken(employee_no, person.tg_id):
                raise UserError("employee_no_taken", value=employee_no)
            changes["employee_no"] = employee_no
        return await self._update(person, person, "profile", **changes)

    async def mark_blocked(self, tg_id: int, blocked: bool = True) -> None:
        with self._changing():
            await self.store.set_blocked_at(tg_id, self._now() if blocked else None)

    async def _keep_one_admin(self, target: Person) -> None:
        if await self.store.other_active_admins(target.tg_id) == 0:
            raise UserError("last_admin")

    async def _update(self, actor: Person, target: Person, action: str, **changes: object) -> Person:
        if changes:
            with self._changing():
                async with self.db.transaction() as conn:
                    await self.store.update_user(conn, target.tg_id, changes, self._now())
                    detail = ", ".join(f"{k}={v}" for k, v in changes.items())
                    await self._audit(conn, actor.tg_id, action, f"target={target.tg_id} {detail}")
        updated = await self.get(target.tg_id)
        assert updated is not None
        return updated

    async def _audit(self, conn, actor: int | None, action: str, detail: str) -> None:
        await self.store.audit(conn, self._now(), actor, action, detail)
