-- KPI reports (issue 17) read other features' tables; these indexes only serve those reads.
-- Reminders of a period are found by their due time (bot/kpi/store.py).
CREATE INDEX reminders_due ON reminders (due_at);
-- Shipping lateness of a period: paid orders by payment time, covering every column the grouped
-- query reads, so it never touches the orders table itself.
CREATE INDEX orders_paid_kpi ON orders (paid_at, status, shop, ship_by, ship_from, shipped_at, presale, refunding, on_hold)
    WHERE paid_at IS NOT NULL;

-- "Before a standard is missed, the people who can still save it are told": one nudge per reminder
-- and standard at 80 % of the claim target (bot/kpi/service.py `due_nudges` / `record_nudges`).
-- The only table the KPI feature writes.
CREATE TABLE kpi_nudges (
    reminder_id INTEGER NOT NULL,
    standard_id TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (reminder_id, standard_id)
);
