-- The KPI feature's scheduled sends (issue 17): the morning review (key: the day reviewed) and the
-- Monday pack (key: that Monday). A row is written before sending, so a restart neither repeats nor
-- (once the moment has come) forgets one: the ticker asks bot/kpi/schedule.py with the last key.
CREATE TABLE kpi_sent (
    kind TEXT    NOT NULL,  -- morning_review | monday_pack
    key  TEXT    NOT NULL,  -- ISO date
    at   INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);
