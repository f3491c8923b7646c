-- KPI read model (issue 17): stored per-reminder facts and daily shipping totals, so a report over a
-- year reads ~1 row per reminder and ~10 per day instead of reworking every record. Kept exact and
-- current by bot/kpi/readmodel.py: every report first recomputes what the triggers below marked as
-- changed (and whatever still depends on the clock), then aggregates in SQL.
--
-- NOTE for other features: this migration adds TRIGGERS on reminders (insert, update),
-- reminder_events (insert), reminder_message_items (insert) and orders (update of the fields the
-- KPIs read; none on insert) — each only inserts a key into a kpi_* dirty table — and no index on
-- other features' tables. The triggers insert with NOT EXISTS rather than OR IGNORE: a
-- trigger's conflict clause is overridden by the outer statement's (an upsert would abort).

-- What a reminder contributes to the measures (bot/kpi/facts.py `Fact`, one row per reminder).
CREATE TABLE kpi_reminder_facts (
    reminder_id INTEGER PRIMARY KEY,
    push        INTEGER,            -- first push (NULL: never pushed, counted nowhere)
    day         TEXT,               -- shop-local day of the first push (ISO)
    week        TEXT,               -- its Monday (ISO)
    rule        TEXT NOT NULL,
    stage       TEXT NOT NULL,
    shop        TEXT,
    shift       TEXT,
    claimer     INTEGER,
    claim_s     INTEGER,            -- push → first claim or 已处理, shift seconds
    done_s      INTEGER,
    escalated   INTEGER NOT NULL,
    snoozed     INTEGER NOT NULL,
    pc_end      TEXT,               -- payment_claim observation: done | open | void
    pc_work     INTEGER,            -- NULL while open (it grows with the clock: worked out at report time)
    pc_wall     INTEGER,
    pay         TEXT,               -- before | open | decided (催付 only)
    acted       INTEGER NOT NULL,
    paid        INTEGER NOT NULL,
    credit      INTEGER,
    cents       INTEGER NOT NULL,
    pay_delta   INTEGER,
    warn        TEXT,               -- skip | open | judged (发货 warnings only)
    warn_ok     INTEGER NOT NULL,
    settled     INTEGER NOT NULL    -- 0: depends on the clock, recomputed by every report
);
CREATE INDEX kpi_reminder_facts_push ON kpi_reminder_facts (push);
CREATE INDEX kpi_reminder_facts_unsettled ON kpi_reminder_facts (reminder_id) WHERE settled = 0;
CREATE INDEX kpi_reminder_facts_open ON kpi_reminder_facts (push) WHERE pc_end = 'open';

-- The facts of a shop-local day (of the first push) summed per shop, shift, claimer and credited
-- person, with the values behind medians/P90 as sorted 8-byte integer arrays (bot/kpi/daily.py).
-- A day is stored (kpi_daily_days) once none of its facts depends on the clock; a changed fact
-- drops its day, which is rebuilt from the facts by the next report.
CREATE TABLE kpi_daily (
    day TEXT NOT NULL, shop TEXT, shift TEXT, claimer INTEGER, credit INTEGER,
    counts BLOB NOT NULL,   -- bot/kpi/daily.py COUNTS, 8-byte little-endian integers
    claim_v BLOB, done_v BLOB, pc_done_work_v BLOB, pc_done_wall_v BLOB, pc_void_work_v BLOB,
    pc_void_wall_v BLOB, pay_delta_v BLOB,
    open_push_v BLOB        -- first pushes of 催付 reminders still unclaimed and open: their wait
                            -- grows with the clock and is worked out at report time
);
CREATE INDEX kpi_daily_day ON kpi_daily (day);
CREATE TABLE kpi_daily_days (day TEXT PRIMARY KEY, at INTEGER NOT NULL);

-- Reminders whose facts must be (re)computed. Every existing reminder starts dirty.
CREATE TABLE kpi_dirty_reminders (reminder_id INTEGER PRIMARY KEY);
INSERT INTO kpi_dirty_reminders (reminder_id) SELECT id FROM reminders;

CREATE TRIGGER kpi_reminder_inserted AFTER INSERT ON reminders
BEGIN
    INSERT INTO kpi_dirty_reminders (reminder_id)
        SELECT NEW.id WHERE NOT EXISTS (SELECT 1 FROM kpi_dirty_reminders WHERE reminder_id = NEW.id);
END;
CREATE TRIGGER kpi_reminder_updated AFTER UPDATE ON reminders
BEGIN
    INSERT INTO kpi_dirty_reminders (reminder_id)
        SELECT NEW.id WHERE NOT EXISTS (SELECT 1 FROM kpi_dirty_reminders WHERE reminder_id = NEW.id);
END;
CREATE TRIGGER kpi_reminder_event AFTER INSERT ON reminder_events
BEGIN
    INSERT INTO kpi_dirty_reminders (reminder_id)
        SELECT NEW.reminder_id WHERE NOT EXISTS (SELECT 1 FROM kpi_dirty_reminders WHERE reminder_id = NEW.reminder_id);
END;
CREATE TRIGGER kpi_reminder_pushed AFTER INSERT ON reminder_message_items
BEGIN
    INSERT INTO kpi_dirty_reminders (reminder_id)
        SELECT NEW.reminder_id WHERE NOT EXISTS (SELECT 1 FROM kpi_dirty_reminders WHERE reminder_id = NEW.reminder_id);
END;
CREATE TRIGGER kpi_order_of_reminder AFTER UPDATE OF shop, amount_cents, paid_at, shipped_at ON orders
    WHEN (NEW.shop IS NOT OLD.shop OR NEW.amount_cents IS NOT OLD.amount_cents
          OR NEW.paid_at IS NOT OLD.paid_at OR NEW.shipped_at IS NOT OLD.shipped_at)
     AND EXISTS (SELECT 1 FROM reminders WHERE order_id = NEW.id)
BEGIN
    INSERT INTO kpi_dirty_reminders (reminder_id) SELECT r.id FROM reminders r WHERE r.order_id = NEW.id
        AND NOT EXISTS (SELECT 1 FROM kpi_dirty_reminders d WHERE d.reminder_id = r.id);
END;

-- Shipping lateness per closed shop-local day, shop and shift (the day of the shipping deadline).
CREATE TABLE kpi_ship_daily (
    day     TEXT    NOT NULL,
    shop    TEXT    NOT NULL,
    shift   TEXT    NOT NULL DEFAULT '',   -- '' = no shift (a zone without one)
    due     INTEGER NOT NULL,
    late    INTEGER NOT NULL,
    unknown INTEGER NOT NULL,
    PRIMARY KEY (day, shop, shift)
);
-- Which days are stored (a day with no order due has no kpi_ship_daily row but is stored).
CREATE TABLE kpi_ship_days (day TEXT PRIMARY KEY, at INTEGER NOT NULL);
-- Orders changed since: the hour (unix hours) of the time their deadline counts from, old and new.
-- New orders need no trigger (none on the import's hot path): orders are never deleted, so rowids
-- only grow, and a sync reads the orders above kpi_read_model 'orders_seen'.
CREATE TABLE kpi_ship_dirty (hour INTEGER PRIMARY KEY);
CREATE TRIGGER kpi_order_changed AFTER UPDATE OF paid_at, ship_by, ship_from, shipped_at, status, refunding,
    on_hold, presale, shop ON orders
    WHEN NEW.paid_at IS NOT OLD.paid_at OR NEW.ship_by IS NOT OLD.ship_by OR NEW.ship_from IS NOT OLD.ship_from
      OR NEW.shipped_at IS NOT OLD.shipped_at OR NEW.status IS NOT OLD.status OR NEW.refunding IS NOT OLD.refunding
      OR NEW.on_hold IS NOT OLD.on_hold OR NEW.presale IS NOT OLD.presale OR NEW.shop IS NOT OLD.shop
BEGIN
    INSERT INTO kpi_ship_dirty (hour) SELECT COALESCE(OLD.ship_by, OLD.ship_from, OLD.paid_at) / 3600
        WHERE OLD.paid_at IS NOT NULL AND NOT EXISTS
              (SELECT 1 FROM kpi_ship_dirty WHERE hour = COALESCE(OLD.ship_by, OLD.ship_from, OLD.paid_at) / 3600);
    INSERT INTO kpi_ship_dirty (hour) SELECT COALESCE(NEW.ship_by, NEW.ship_from, NEW.paid_at) / 3600
        WHERE NEW.paid_at IS NOT NULL AND NOT EXISTS
              (SELECT 1 FROM kpi_ship_dirty WHERE hour = COALESCE(NEW.ship_by, NEW.ship_from, NEW.paid_at) / 3600);
END;

-- The configuration the stored rows were computed under (shifts, time zone, rule thresholds): when
-- it changes, everything is recomputed.
CREATE TABLE kpi_read_model (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO kpi_read_model (key, value) SELECT 'orders_seen', CAST(coalesce(max(id), 0) AS TEXT) FROM orders;
