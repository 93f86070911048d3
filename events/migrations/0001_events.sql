-- The module's append-only event log (the outbox) and the positions this
-- module has reached in the logs it consumes. Only events/ reads or writes
-- these tables.
CREATE TABLE events (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  type       TEXT    NOT NULL,
  subject    TEXT    NOT NULL,
  version    INTEGER NOT NULL,
  data       TEXT    NOT NULL CHECK (json_valid(data)),
  created_at TEXT    NOT NULL
);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
  SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
  SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TABLE consumer_positions (
  source TEXT PRIMARY KEY,
  seq    INTEGER NOT NULL
);
