-- Issue 11: reminders never drop silently.
--
-- orders.on_hold   the platform holds the order (JD 锁定/暂停, PDD 拼团中, Taobao PAID_FORBID_CONSIGN):
--                  kept and shown, no shipping reminder while held (bot/orders/vocabulary.py).
-- orders.ship_from the shipping clock starts here instead of paid_at (PDD 拼单成功时间).
-- orders.ship_by   the order's own shipping deadline (抖店/PDD 承诺发货时间, 预约发货时间): wins over
--                  the clock + KEFU_UNSHIPPED_REMIND_HOURS (bot/reminders/rules.py).
ALTER TABLE orders ADD COLUMN on_hold INTEGER NOT NULL DEFAULT 0 CHECK (on_hold IN (0, 1));
ALTER TABLE orders ADD COLUMN ship_from INTEGER;
ALTER TABLE orders ADD COLUMN ship_by INTEGER;

-- The shipping scan's partial index, now also without held orders and covering the new clock columns.
DROP INDEX orders_unshipped_due;
CREATE INDEX orders_unshipped_due ON orders (status, paid_at, ship_from, ship_by, shop, presale, refunding, on_hold)
    WHERE status IN ('paid_unshipped', 'partially_shipped') AND presale = 0 AND refunding = 0 AND on_hold = 0;

DROP TRIGGER orders_changed_for_reminders;
CREATE TRIGGER orders_changed_for_reminders AFTER UPDATE OF status, refunding, presale, on_hold ON orders
    WHEN (NEW.status IS NOT OLD.status OR NEW.refunding IS NOT OLD.refunding OR NEW.presale IS NOT OLD.presale
          OR NEW.on_hold IS NOT OLD.on_hold)
     AND EXISTS (SELECT 1 FROM reminders WHERE order_id = NEW.id)
BEGIN
    INSERT OR IGNORE INTO reminder_order_changes (order_id) VALUES (NEW.id);
END;

-- A shipping breach closed while the order is still unshipped keeps being watched:
--   followup_outcome  what the agent chose (urged_warehouse / out_of_stock / agreed_with_buyer / other)
--   watch_until       when the scan looks again; still unshipped then → the reminder fires again
--   repeats           how many times it fired again (shown as 第 N 次重复提醒)
ALTER TABLE reminders ADD COLUMN followup_outcome TEXT;
ALTER TABLE reminders ADD COLUMN watch_until INTEGER;
ALTER TABLE reminders ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0;
CREATE INDEX reminders_watch ON reminders (watch_until) WHERE watch_until IS NOT NULL;

-- "Nobody of this shift is on duty" told to the admins once per shift occurrence.
CREATE TABLE reminder_unstaffed_notes (
    occurrence TEXT    PRIMARY KEY,   -- shift name and local start, e.g. day:2026-11-23T08:30
    sent_at    INTEGER NOT NULL
);
