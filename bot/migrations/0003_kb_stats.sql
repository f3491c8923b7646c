-- Usage of the reply scripts knowledge base (issue 3), for /kb_stats. Times are unix seconds (UTC).
--
-- One row per event: an agent opened a script (view) or pressed its copy button (copy). Script
-- ids are text from scripts_kb/ and may disappear after an edit, so there is no foreign key.
CREATE TABLE kb_script_events (
    id        INTEGER PRIMARY KEY,
    tg_id     INTEGER NOT NULL,
    script_id TEXT    NOT NULL,
    kind      TEXT    NOT NULL CHECK (kind IN ('view', 'copy')),
    source    TEXT    NOT NULL DEFAULT '',   -- search, inline, menu, flow, order, …
    at        INTEGER NOT NULL
);
CREATE INDEX kb_script_events_at ON kb_script_events (at, script_id);
CREATE INDEX kb_script_events_script ON kb_script_events (script_id, at);

-- Searches that found no good match, so supervisors see what the knowledge base lacks.
CREATE TABLE kb_misses (
    id    INTEGER PRIMARY KEY,
    tg_id INTEGER NOT NULL,
    query TEXT    NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX kb_misses_at ON kb_misses (at);
