-- Reminders (issue 5): 催付 for unpaid orders, 发货 warnings and breaches for paid, unshipped ones.
-- Times are unix seconds (UTC). See bot/reminders/engine.py for the life cycle.
--
-- One row per (order, rule, stage): the dedupe key. A row is created by the scan when the stage
-- falls due and then only changes state:
--   pending   due, this delivery round not yet received by every recipient (or held: nobody on duty)
--   sent      every recipient of the round has it; nobody claimed it yet
--   claimed   someone pressed 我来处理
--   escalated sent, unclaimed past KEFU_ESCALATE_MINUTES, supervisors told (repeated hourly)
--   snoozed   稍后提醒: a new delivery round starts at snoozed_until
--   done      已处理, with an outcome
--   resolved  closed by the scan: the order was paid / shipped / closed / refunded, or a warning
--             was superseded by its breach; `resolved_reason` says which
CREATE TABLE reminders (
    id              INTEGER PRIMARY KEY,
    order_id        INTEGER NOT NULL,   -- orders.id; no foreign key: orders are never deleted, and the
                                        -- check would cost a lookup in a big table per recorded reminder
    rule            TEXT    NOT NULL CHECK (rule IN ('unpaid', 'unshipped')),
    stage           TEXT    NOT NULL CHECK (stage IN ('remind', 'warn', 'breach')),
    due_at          INTEGER NOT NULL,   -- when the stage fell due (an early night-gap warning: when it was brought forward to)
    deadline_at     INTEGER,            -- unshipped: the shipping deadline (paid_at + breach hours)
    state           TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sent', 'claimed', 'done', 'snoozed', 'resolved', 'escalated')),
    round           INTEGER NOT NULL DEFAULT 1,  -- delivery round; a snooze starts the next one
    first_sent_at   INTEGER,            -- first message of the current round accepted by Telegram
    sent_at         INTEGER,            -- every recipient of the current round served
    claimed_by      INTEGER,
    claimed_at      INTEGER,
    snoozed_by      INTEGER,
    snoozed_until   INTEGER,
    done_by         INTEGER,
    done_at         INTEGER,
    outcome         TEXT    CHECK (outcome IS NULL OR outcome IN ('reminded', 'warehouse', 'shipped', 'no_action')),
    resolved_at     INTEGER,
    resolved_reason TEXT,
    escalations     INTEGER NOT NULL DEFAULT 0,
    escalated_at    INTEGER,            -- the latest escalation
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (order_id, rule, stage)
);
-- Open reminders are few, closed ones pile up: every scan reads by state.
CREATE INDEX reminders_state ON reminders (state, resolved_reason);

-- The shipping scan's candidates: paid, not shipped, not presale, no refund. A partial index holds
-- only those few rows (not the shipped and completed bulk) and covers the scan, so neither the
-- warning nor the breach query reads the orders table itself. The scan's WHERE repeats the index's
-- terms literally (bot/reminders/rules.py), which is what lets SQLite use it; the filtered columns
-- are listed too because SQLite only calls an index covering when every referenced column is in it.
CREATE INDEX orders_unshipped_due ON orders (status, paid_at, shop, presale, refunding)
    WHERE status IN ('paid_unshipped', 'partially_shipped') AND presale = 0 AND refunding = 0;

-- Orders with reminders whose status, refund or presale flag changed since the last scan: the
-- scan re-checks only these (and every open reminder once after each start), so auto-resolving
-- costs nothing while nothing changes, however many reminders are open. Filled by the trigger
-- below whatever changed the order (file import, API push, manual SQL); emptied by each scan.
CREATE TABLE reminder_order_changes (
    order_id INTEGER PRIMARY KEY
);
CREATE TRIGGER orders_changed_for_reminders AFTER UPDATE OF status, refunding, presale ON orders
    WHEN (NEW.status IS NOT OLD.status OR NEW.refunding IS NOT OLD.refunding OR NEW.presale IS NOT OLD.presale)
     AND EXISTS (SELECT 1 FROM reminders WHERE order_id = NEW.id)
BEGIN
    INSERT OR IGNORE INTO reminder_order_changes (order_id) VALUES (NEW.id);
END;

-- Telegram messages that show reminders (single cards, digests, escalations), so a change of
-- state edits every copy, and a restart knows who already received what.
CREATE TABLE reminder_messages (
    id         INTEGER PRIMARY KEY,
    chat_id    INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('card', 'digest', 'escalation')),
    rule       TEXT,
    part       INTEGER NOT NULL DEFAULT 1,   -- digest part number (1/3, 2/3, ...)
    parts      INTEGER NOT NULL DEFAULT 1,
    total      INTEGER NOT NULL DEFAULT 1,   -- reminders in the whole digest, all parts
    sent_at    INTEGER NOT NULL,
    UNIQUE (chat_id, message_id)
);

-- Which reminders a message carries. `purpose` notify/escalate rows are the delivery record:
-- (reminder, purpose, round, chat) exists once the chat has that round. `position` is the line in
-- a digest (NULL: counted in the digest's "N more" line but not listed).
CREATE TABLE reminder_message_items (
    message_row INTEGER NOT NULL REFERENCES reminder_messages (id) ON DELETE CASCADE,
    reminder_id INTEGER NOT NULL REFERENCES reminders (id) ON DELETE CASCADE,
    chat_id     INTEGER NOT NULL,
    purpose     TEXT    NOT NULL CHECK (purpose IN ('notify', 'escalate', 'detail')),
    round       INTEGER NOT NULL,
    position    INTEGER,
    PRIMARY KEY (message_row, reminder_id)
);
CREATE UNIQUE INDEX reminder_items_delivered ON reminder_message_items (reminder_id, purpose, round, chat_id)
    WHERE purpose IN ('notify', 'escalate');
CREATE INDEX reminder_items_reminder ON reminder_message_items (reminder_id);

-- Every press and every automatic change, with who and when: the record the issue asks for.
CREATE TABLE reminder_events (
    id          INTEGER PRIMARY KEY,
    reminder_id INTEGER NOT NULL REFERENCES reminders (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    actor       INTEGER,             -- Telegram id; NULL for the scan
    action      TEXT    NOT NULL,    -- claim, done, snooze, script, open, refused, resolved, reopened, escalated, ...
    detail      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX reminder_events_reminder ON reminder_events (reminder_id, at);
