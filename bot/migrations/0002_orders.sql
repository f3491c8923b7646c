-- Orders imported from shop back-end exports and ERP pushes (issue 4). Times are unix seconds (UTC).
--
-- One row per (platform, order_no). No addresses or full phone numbers are stored: `buyer` is
-- the buyer's nickname, or a masked phone (138****1234) when the export has nothing else.
-- `amount_cents` is the amount the buyer pays, in integer cents (fen): exact, and sums in SQL.
-- `status` is the normalised code; `status_raw` is the export's own wording, for display.
-- Status never moves back (unpaid < paid_unshipped < partially_shipped < shipped < completed;
-- closed is terminal): see bot/orders/importer.py for the merge rule.
CREATE TABLE orders (
    id            INTEGER PRIMARY KEY,
    platform      TEXT    NOT NULL CHECK (platform IN ('taobao', 'douyin', 'pinduoduo', 'jd', 'other')),
    order_no      TEXT    NOT NULL CHECK (order_no <> ''),
    shop          TEXT    NOT NULL DEFAULT '',
    status        TEXT    NOT NULL CHECK (status IN ('unpaid', 'paid_unshipped', 'partially_shipped',
                                                     'shipped', 'completed', 'closed')),
    status_raw    TEXT    NOT NULL DEFAULT '',
    refunding     INTEGER NOT NULL DEFAULT 0 CHECK (refunding IN (0, 1)),
    presale       INTEGER NOT NULL DEFAULT 0 CHECK (presale IN (0, 1)),
    created_at    INTEGER,
    paid_at       INTEGER,
    shipped_at    INTEGER,
    amount_cents  INTEGER,
    buyer         TEXT    NOT NULL DEFAULT '',
    item_title    TEXT    NOT NULL DEFAULT '',
    tracking_no   TEXT    NOT NULL DEFAULT '',
    carrier       TEXT    NOT NULL DEFAULT '',
    source        TEXT    NOT NULL DEFAULT '',   -- the format that last changed the row: taobao_legacy, douyin, api, …
    first_seen_at INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (platform, order_no)
);
-- Lookup by number alone (/order 1234…) uses the unique index with `platform IN (<all five>)`.
-- Reminder scans: "unpaid and created before T" and "paid, unshipped and paid before T".
-- Composite rather than partial, so queries may bind the status as a parameter.
CREATE INDEX orders_status_created ON orders (status, created_at);
CREATE INDEX orders_status_paid ON orders (status, paid_at);

-- One row per committed file import or API push: what came in, what it changed, who sent it.
CREATE TABLE import_batches (
    id         INTEGER PRIMARY KEY,
    source     TEXT    NOT NULL,          -- 'file' or 'api'
    filename   TEXT,
    format     TEXT    NOT NULL,          -- taobao_legacy, taobao_qianniu, douyin, pinduoduo, jd, generic, api
    platform   TEXT,
    rows_read  INTEGER NOT NULL DEFAULT 0,
    inserted   INTEGER NOT NULL DEFAULT 0,
    updated    INTEGER NOT NULL DEFAULT 0,
    unchanged  INTEGER NOT NULL DEFAULT 0,
    rejected   INTEGER NOT NULL DEFAULT 0,
    skipped    INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    actor      INTEGER
);
CREATE INDEX import_batches_at ON import_batches (created_at);
