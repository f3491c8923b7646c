-- Issue 16: a broadcast's visible number. Drafts, schedule templates and sent broadcasts share
-- the `id` sequence, so the first announcement of a fresh database could be "#2". `number` is
-- given only when a broadcast is actually sent (发送 pressed, or a schedule fired): 1, 2, 3 …
-- in that order, never reused. `id` stays the internal key (buttons, recipients).
ALTER TABLE broadcasts ADD COLUMN number INTEGER;

UPDATE broadcasts
   SET number = (SELECT COUNT(*) FROM broadcasts earlier
                  WHERE earlier.status IN ('sending', 'done') AND earlier.id <= broadcasts.id)
 WHERE status IN ('sending', 'done');

CREATE UNIQUE INDEX broadcasts_number ON broadcasts (number);
