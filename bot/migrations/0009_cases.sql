-- After-sales cases with approvals (issue 18). Times are unix seconds (UTC). Owned by bot/cases/store.py.
--
-- `id` is the visible case number (售后#12): AUTOINCREMENT so a number is never reused.
-- `amount_cents` is the exact amount in integer 分 (fen). `order_id` links the stored order when
-- one existed at opening; `order_no`/`platform`/`shop` are kept on the case, so a case survives
-- without an order (chat-only buyers) and reads the same if the order row is later replaced.
CREATE TABLE cases (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    platform           TEXT    NOT NULL DEFAULT '' ,
    shop               TEXT    NOT NULL DEFAULT '',
    order_no           TEXT    NOT NULL DEFAULT '',
    order_id           INTEGER REFERENCES orders (id) ON DELETE SET NULL,
    buyer              TEXT    NOT NULL DEFAULT '',
    buyer_phone        TEXT    NOT NULL DEFAULT '',   -- personal data: masked in exports unless --full
    buyer_address      TEXT    NOT NULL DEFAULT '',   -- personal data: masked in exports unless --full
    item               TEXT    NOT NULL DEFAULT '',
    problem            TEXT    NOT NULL,
    resolution         TEXT,
    amount_cents       INTEGER CHECK (amount_cents IS NULL OR amount_cents >= 0),
    shipping_payer     TEXT,
    responsible        TEXT,
    responsible_person INTEGER,                       -- tg_id when responsible = 'agent' (服务投诉 counts)
    needs_supervisor   INTEGER NOT NULL DEFAULT 0 CHECK (needs_supervisor IN (0, 1)),
    description        TEXT    NOT NULL DEFAULT '',
    notes              TEXT    NOT NULL DEFAULT '',
    state              TEXT    NOT NULL CHECK (state IN ('open', 'pending_approval', 'approved', 'rejected',
                                                          'waiting_buyer', 'waiting_warehouse', 'done', 'closed')),
    opened_by          INTEGER NOT NULL,
    owner              INTEGER NOT NULL,
    due_at             INTEGER,
    opened_at          INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    finished_at        INTEGER,                        -- last time it reached 已完成 / 已关闭 (NULL while open)
    source             TEXT    NOT NULL DEFAULT ''     -- command, script:<id>, order_card, reminder:<id>
);
CREATE INDEX cases_owner_state ON cases (owner, state);
CREATE INDEX cases_state ON cases (state);
CREATE INDEX cases_order_no ON cases (order_no);
CREATE INDEX cases_opened_at ON cases (opened_at);

-- Photos and files sent to the bot for a case, kept by Telegram file id.
CREATE TABLE case_evidence (
    id             INTEGER PRIMARY KEY,
    case_id        INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('photo', 'document', 'video', 'voice')),
    file_id        TEXT    NOT NULL,
    file_unique_id TEXT    NOT NULL DEFAULT '',
    caption        TEXT    NOT NULL DEFAULT '',
    added_by       INTEGER NOT NULL,
    added_at       INTEGER NOT NULL
);
CREATE INDEX case_evidence_case ON case_evidence (case_id);

-- Approval requests. A submitted request is never edited: withdrawing ends it, resubmitting adds a
-- new row carrying a snapshot of what was asked (resolution, amount, reasons).
CREATE TABLE case_approvals (
    id              INTEGER PRIMARY KEY,
    case_id         INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    requester       INTEGER NOT NULL,
    approver        INTEGER NOT NULL,
    level           TEXT    NOT NULL CHECK (level IN ('supervisor', 'admin')),
    reasons         TEXT    NOT NULL DEFAULT '',      -- comma-separated rule codes
    resolution      TEXT,
    amount_cents    INTEGER,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'rejected', 'withdrawn')),
    submitted_at    INTEGER NOT NULL,
    deliver_at      INTEGER NOT NULL,                 -- the next shift's start when submitted off hours
    delivered_at    INTEGER,
    remind_at       INTEGER NOT NULL,
    reminded_at     INTEGER,
    escalate_at     INTEGER NOT NULL,
    escalated_at    INTEGER,
    nudged_at       INTEGER,                          -- last 催办 by the requester
    decided_by      INTEGER,
    decided_at      INTEGER,
    decision_reason TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX case_approvals_case ON case_approvals (case_id);
CREATE INDEX case_approvals_pending ON case_approvals (state, approver);
CREATE UNIQUE INDEX case_approvals_one_pending ON case_approvals (case_id) WHERE state = 'pending';

-- Every change to a case, timestamped: field edits (old → new), state moves, approvals, evidence.
CREATE TABLE case_history (
    id      INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    at      INTEGER NOT NULL,
    actor   INTEGER,
    action  TEXT    NOT NULL,
    field   TEXT    NOT NULL DEFAULT '',
    old     TEXT    NOT NULL DEFAULT '',
    new     TEXT    NOT NULL DEFAULT '',
    detail  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX case_history_case ON case_history (case_id, at);
