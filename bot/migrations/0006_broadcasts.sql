-- Supervisor broadcasts (issue 7): drafts, sent announcements, per-recipient delivery rows
-- (the resume point after a crash) and scheduled announcements. Times are unix seconds (UTC).

CREATE TABLE broadcasts (
    id              INTEGER PRIMARY KEY,
    author_id       INTEGER NOT NULL,
    -- draft: being composed; template: content of a schedule; sending: delivery under way
    -- (resumed after a restart); done: every recipient attempted; cancelled: draft dropped.
    status          TEXT    NOT NULL CHECK (status IN ('draft', 'template', 'sending', 'done', 'cancelled')),
    kind            TEXT    NOT NULL CHECK (kind IN ('text', 'photo', 'document')),
    body_html       TEXT    NOT NULL DEFAULT '',   -- the text, or the caption of a photo/document (Telegram HTML)
    file_id         TEXT,                          -- photo/document: Telegram file_id, re-sent by id
    file_name       TEXT,
    -- 'all' | 'duty' | 'shift:<name>' | 'role:<agent|supervisor|admin>' | 'people:<id>,<id>...'
    audience        TEXT,
    ack_required    INTEGER,                       -- NULL while not chosen yet
    urgent          INTEGER,
    pin             INTEGER,
    silent          INTEGER,
    schedule_rule   TEXT,                          -- a /schedule draft: the parsed rule, encoded
    schedule_text   TEXT,                          -- ... and as the supervisor typed it
    schedule_id     INTEGER,                       -- fired by this schedule
    panel_chat_id   INTEGER,                       -- the author's compose/progress message
    panel_message_id INTEGER,
    team_message_id INTEGER,                       -- the copy posted (and pinned) in the team group
    team_pinned     INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,                       -- when 发送 was pressed (or the schedule fired)
    finished_at     INTEGER
);
CREATE INDEX broadcasts_status ON broadcasts (status, id);

CREATE TABLE broadcast_recipients (
    broadcast_id     INTEGER NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
    tg_id            INTEGER NOT NULL,
    -- pending: not tried yet; sending: claimed, the request may be in flight (after a crash it
    -- is unknown whether it arrived, so it is never re-sent); sent / blocked / failed: outcome.
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'blocked', 'failed')),
    message_id       INTEGER,
    error            TEXT,
    sent_at          INTEGER,
    acked_at         INTEGER,
    renotify_count   INTEGER NOT NULL DEFAULT 0,   -- urgent re-notifications sent (at most 3)
    last_notified_at INTEGER,                      -- the copy or the latest reminder
    PRIMARY KEY (broadcast_id, tg_id)
);
CREATE INDEX broadcast_recipients_status ON broadcast_recipients (broadcast_id, status);
CREATE INDEX broadcast_recipients_unacked ON broadcast_recipients (status, acked_at);

CREATE TABLE broadcast_schedules (
    id            INTEGER PRIMARY KEY,
    template_id   INTEGER NOT NULL REFERENCES broadcasts (id),
    author_id     INTEGER NOT NULL,
    rule          TEXT    NOT NULL,   -- 'daily@08:00', 'weekly:0,2@08:00' (Monday = 0), 'once@2026-12-01T09:00'
    rule_text     TEXT    NOT NULL,   -- as typed
    next_run      INTEGER,            -- NULL once a one-off has run (or was missed)
    last_run      INTEGER,            -- the occurrence last sent or reported missed
    grace_minutes INTEGER NOT NULL DEFAULT 30,
    paused        INTEGER NOT NULL DEFAULT 0,
    status        TEXT    NOT NULL CHECK (status IN ('active', 'finished', 'deleted')),
    created_at    INTEGER NOT NULL
);
CREATE INDEX broadcast_schedules_due ON broadcast_schedules (status, paused, next_run);
