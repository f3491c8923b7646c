-- KPI reports (issue 17) read other features' tables; these indexes only serve those reads.
-- Reminders of a period are found by their due time (bot/kpi/store.py).
CREATE INDEX reminders_due ON reminders (due_at);
-- Shipping lateness of a period: paid orders by payment time, covering every column the grouped
-- query reads, so it never touches the orders table itself.
CREATE INDEX orders_paid_kpi ON orders (paid_at, status, shop, ship_by, ship_from, shipped_at, presale, refunding, on_hold)
    WHERE paid_at IS NOT NULL;
