-- People, invitations and the audit trail. Times are unix seconds (UTC).
CREATE TABLE users (
    tg_id        INTEGER PRIMARY KEY,
    username     TEXT,
    full_name    TEXT    NOT NULL DEFAULT '',
    display_name TEXT,
    employee_no  TEXT,
    role         TEXT    NOT NULL CHECK (role IN ('agent', 'supervisor', 'admin')),
    shift        TEXT,
    active       INTEGER NOT NULL DEFAULT 1,
    blocked_at   INTEGER,            -- the user blocked the bot (Telegram 403)
    invited_by   INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_employee_no ON users (employee_no) WHERE employee_no IS NOT NULL;
CREATE INDEX users_shift ON users (shift, active);

CREATE TABLE invites (
    code        TEXT    PRIMARY KEY,
    role        TEXT    NOT NULL CHECK (role IN ('agent', 'supervisor')),
    created_by  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_by     INTEGER,
    used_at     INTEGER
);

-- Wrong invitation codes, to throttle guessing.
CREATE TABLE join_failures (
    tg_id INTEGER NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX join_failures_user ON join_failures (tg_id, at);

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  INTEGER,
    action TEXT    NOT NULL,
    detail TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);

-- Rate limiting of error reports to admins and similar "at most once per N" notices.
CREATE TABLE notices (
    key     TEXT    PRIMARY KEY,
    sent_at INTEGER NOT NULL
);
