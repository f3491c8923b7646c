"""People, roles and invitations: the public face of the people feature.

`PeopleService` (bot/people/service.py) holds the rules; its SQL is in bot/people/store.py, the
only module that writes users, invites, join_failures and audit_log.
"""

from bot.people.service import (
    DISPLAY_NAME_LIMIT,
    INVITE_TTL,
    JOIN_FAILURE_LIMIT,
    JOIN_FAILURE_WINDOW,
    Invite,
    PeopleService,
    Person,
    Role,
    UserError,
    clean_display_name,
    may_invite,
    name_key,
)

__all__ = [
    "DISPLAY_NAME_LIMIT", "INVITE_TTL", "JOIN_FAILURE_LIMIT", "JOIN_FAILURE_WINDOW", "Invite", "PeopleService",
    "Person", "Role", "UserError", "clean_display_name", "may_invite", "name_key",
]
