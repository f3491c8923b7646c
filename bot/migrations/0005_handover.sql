-- The shift handover book (交接本, issue 6). Times are unix seconds (UTC).
--
-- A shift occurrence is named '<shift>:<local start date>', e.g. 'night:2026-11-23' for the night
-- shift that starts on 23 November at 17:30 and ends at 01:00 on the 24th. Its start is stored
-- next to it (occurrence_start) so "written before this shift started" is one comparison.

-- One row per handover item. Text, kind, urgency and order number may change (by the author,
-- within 10 minutes); every change is also written to handover_history.
CREATE TABLE handover_items (
    id                  INTEGER PRIMARY KEY,
    author_id           INTEGER NOT NULL,
    occurrence          TEXT    NOT NULL,      -- the shift occurrence it was written in
    occurrence_start    INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    text                TEXT    NOT NULL CHECK (text <> ''),
    kind                TEXT    NOT NULL DEFAULT 'other'
                        CHECK (kind IN ('refund', 'customer', 'warehouse', 'complaint', 'other')),
    urgent              INTEGER NOT NULL DEFAULT 0 CHECK (urgent IN (0, 1)),
    order_no            TEXT,                  -- kept even when no such order is stored
    attachment_file_id  TEXT,
    attachment_type     TEXT CHECK (attachment_type IN ('photo', 'document')),
    attachment_name     TEXT,
    status              TEXT    NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved', 'withdrawn')),
    resolved_by         INTEGER,
    resolved_at         INTEGER,
    resolved_occurrence TEXT,                  -- the shift occurrence it was resolved in (stats)
    resolution_note     TEXT    NOT NULL DEFAULT '',
    withdrawn_at        INTEGER
);
CREATE INDEX handover_items_open ON handover_items (status, occurrence_start);
CREATE INDEX handover_items_order_no ON handover_items (order_no) WHERE order_no IS NOT NULL;
CREATE INDEX handover_items_created ON handover_items (created_at);
CREATE INDEX handover_items_occurrence ON handover_items (occurrence);
CREATE INDEX handover_items_resolved_occurrence ON handover_items (resolved_occurrence)
    WHERE resolved_occurrence IS NOT NULL;

-- Every change to an item: create, edit (text), kind, withdraw, take, resolve. `before` and
-- `after` are JSON objects of the fields that changed.
CREATE TABLE handover_history (
    id      INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES handover_items (id),
    at      INTEGER NOT NULL,
    actor   INTEGER NOT NULL,
    action  TEXT    NOT NULL CHECK (action IN ('create', 'edit', 'kind', 'withdraw', 'take', 'resolve')),
    before  TEXT    NOT NULL DEFAULT '{}',
    after   TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX handover_history_item ON handover_history (item_id, id);

-- An item handed to one shift occurrence (in its start-of-shift digest, or later when it was
-- written after that shift had started). Take-over is per shift: every incoming shift confirms
-- the open items it inherits, so an item carried over twice is taken over twice.
CREATE TABLE handover_deliveries (
    item_id          INTEGER NOT NULL REFERENCES handover_items (id),
    occurrence       TEXT    NOT NULL,
    occurrence_start INTEGER NOT NULL,
    delivered_at     INTEGER NOT NULL,
    taken_by         INTEGER,
    taken_at         INTEGER,
    alert            TEXT CHECK (alert IN ('sent', 'superseded')),  -- the not-taken-over alert
    alerted_at       INTEGER,
    PRIMARY KEY (item_id, occurrence)
);
CREATE INDEX handover_deliveries_occurrence ON handover_deliveries (occurrence);
CREATE INDEX handover_deliveries_untaken ON handover_deliveries (delivered_at) WHERE taken_at IS NULL AND alert IS NULL;

-- Every message showing an item card, so each copy is updated when the item changes.
-- occurrence '' is the author's own confirmation; message_id 0 marks a copy that could not be
-- delivered (the person blocked the bot), so it is not retried.
CREATE TABLE handover_cards (
    item_id    INTEGER NOT NULL REFERENCES handover_items (id),
    occurrence TEXT    NOT NULL,
    chat_id    INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    sent_at    INTEGER NOT NULL,
    PRIMARY KEY (item_id, occurrence, chat_id)
);

-- What the shift-change tick already did per shift occurrence and person (the pre-end prompt,
-- the digest header), so a restart between shifts neither repeats nor loses a message.
CREATE TABLE handover_notices (
    occurrence TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('prompt', 'digest')),
    tg_id      INTEGER NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('sent', 'blocked', 'skipped')),
    at         INTEGER NOT NULL,
    PRIMARY KEY (occurrence, kind, tg_id)
);

-- Feature bookkeeping; 'epoch' is when the handover feature first ran: shifts that started
-- (or prompts that fell due) before it are not back-filled.
CREATE TABLE handover_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
