-- Imports in flight (issue 12): one row while a file is being imported, deleted when it ends.
-- A row left after a restart is an import that was interrupted (kill -9, power loss): nothing of
-- it was written (one file = one transaction), and its sender is told so on start.
CREATE TABLE imports_in_flight (
    id INTEGER PRIMARY KEY,
    chat_id INTEGER NOT NULL,
    message_id INTEGER,
    user_id INTEGER,
    filename TEXT NOT NULL,
    started_at INTEGER NOT NULL
);
