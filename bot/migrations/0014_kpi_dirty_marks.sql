-- Issue 17 fix (reviewer finding: dirty reminders lost when a sync step fails). A sync no longer
-- deletes the dirty marks it takes: it keeps them until the facts it computed are stored, and then
-- deletes, in the same transaction, only the marks that were not set again meanwhile. So every mark
-- gets a `mark` number, set from a counter (kpi_read_model 'mark') that each trigger firing bumps:
-- a change while a reminder is being computed gives its mark a new, higher number, and the mark
-- survives the store of the older facts. The counter only grows, so a mark deleted and set again
-- never gets the number a sync took earlier.
--
-- NOTE for other features: the triggers of 0012 (on reminders, reminder_events,
-- reminder_message_items, orders) are recreated with the same events and conditions; each still
-- writes only the read model's own tables (now also the counter row of kpi_read_model).
ALTER TABLE kpi_dirty_reminders ADD COLUMN mark INTEGER NOT NULL DEFAULT 0;
INSERT INTO kpi_read_model (key, value) SELECT 'mark', '0'
    WHERE NOT EXISTS (SELECT 1 FROM kpi_read_model WHERE key = 'mark');

DROP TRIGGER kpi_reminder_inserted;
CREATE TRIGGER kpi_reminder_inserted AFTER INSERT ON reminders
BEGIN
    UPDATE kpi_read_model SET value = CAST(value AS INTEGER) + 1 WHERE key = 'mark';
    INSERT INTO kpi_dirty_reminders (reminder_id, mark)
        SELECT NEW.id, 0 WHERE NOT EXISTS (SELECT 1 FROM kpi_dirty_reminders WHERE reminder_id = NEW.id);
    UPDATE kpi_dirty_reminders SET mark = (SELECT CAST(value AS INTEGER) FROM kpi_read_model WHERE key = 'mark') WHERE reminder_id = NEW.id;
END;

DROP TRIGGER kpi_reminder_updated;
CREATE TRIGGER kpi_reminder_updated AFTER UPDATE ON reminders
BEGIN
    UPDATE kpi_read_model SET value = CAST(value AS INTEGER) + 1 WHERE key = 'mark';
    INSERT INTO kpi_dirty_reminders (reminder_id, mark)
        SELECT NEW.id, 0 WHERE NOT EXISTS (SELECT 1 FROM kpi_dirty_reminders WHERE reminder_id = NEW.id);
    UPDATE kpi_dirty_reminders SET mark = (SELECT CAST(value AS INTEGER) FROM kpi_read_model WHERE key = 'mark') WHERE reminder_id = NEW.id;
END;

DROP TRIGGER kpi_reminder_event;
CREATE TRIGGER kpi_reminder_event AFTER INSERT ON reminder_events
BEGIN
    UPDATE kpi_read_model SET value = CAST(value AS INTEGER) + 1 WHERE key = 'mark';
    INSERT INTO kpi_dirty_reminders (reminder_id, mark)
        SELECT NEW.reminder_id, 0 WHERE NOT EXISTS (SELECT 1 FROM kpi_dirty_reminders WHERE reminder_id = NEW.reminder_id);
    UPDATE kpi_dirty_reminders SET mark = (SELECT CAST(value AS INTEGER) FROM kpi_read_model WHERE key = 'mark') WHERE reminder_id = NEW.reminder_id;
END;

DROP TRIGGER kpi_reminder_pushed;
CREATE TRIGGER kpi_reminder_pushed AFTER INSERT ON reminder_message_items
BEGIN
    UPDATE kpi_read_model SET value = CAST(value AS INTEGER) + 1 WHERE key = 'mark';
    INSERT INTO kpi_dirty_reminders (reminder_id, mark)
        SELECT NEW.reminder_id, 0 WHERE NOT EXISTS (SELECT 1 FROM kpi_dirty_reminders WHERE reminder_id = NEW.reminder_id);
    UPDATE kpi_dirty_reminders SET mark = (SELECT CAST(value AS INTEGER) FROM kpi_read_model WHERE key = 'mark') WHERE reminder_id = NEW.reminder_id;
END;

DROP TRIGGER kpi_order_of_reminder;
CREATE TRIGGER kpi_order_of_reminder AFTER UPDATE OF shop, amount_cents, paid_at, shipped_at ON orders
    WHEN (NEW.shop IS NOT OLD.shop OR NEW.amount_cents IS NOT OLD.amount_cents
          OR NEW.paid_at IS NOT OLD.paid_at OR NEW.shipped_at IS NOT OLD.shipped_at)
     AND EXISTS (SELECT 1 FROM reminders WHERE order_id = NEW.id)
BEGIN
    UPDATE kpi_read_model SET value = CAST(value AS INTEGER) + 1 WHERE key = 'mark';
    INSERT INTO kpi_dirty_reminders (reminder_id, mark) SELECT r.id, 0 FROM reminders r WHERE r.order_id = NEW.id
        AND NOT EXISTS (SELECT 1 FROM kpi_dirty_reminders d WHERE d.reminder_id = r.id);
    UPDATE kpi_dirty_reminders SET mark = (SELECT CAST(value AS INTEGER) FROM kpi_read_model WHERE key = 'mark')
        WHERE reminder_id IN (SELECT id FROM reminders WHERE order_id = NEW.id);
END;
