-- What the seller dashboard shows: until when a reservation holds the
-- ticket (from order:created), when it sold (order:completed), and the
-- sellers' display names (from auth's user:created).
ALTER TABLE tickets ADD COLUMN reserved_until TEXT;
ALTER TABLE tickets ADD COLUMN sold_at TEXT;

CREATE INDEX tickets_sold ON tickets (user_id, sold_at) WHERE sold_at IS NOT NULL;

CREATE TABLE sellers (
  id   TEXT PRIMARY KEY,
  name TEXT NOT NULL
) STRICT;
