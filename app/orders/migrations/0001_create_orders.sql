-- The orders module's copy of the tickets it may sell, kept from the
-- tickets module's ticket:created and ticket:updated events. version is the
-- ticket's version last applied: version v is applied only over v-1.
CREATE TABLE tickets (
  id      TEXT    PRIMARY KEY,
  title   TEXT    NOT NULL,
  price   INTEGER NOT NULL,  -- cents
  user_id TEXT    NOT NULL,
  version INTEGER NOT NULL
) STRICT;

CREATE TABLE orders (
  id         TEXT    PRIMARY KEY,
  user_id    TEXT    NOT NULL,
  ticket_id  TEXT    NOT NULL REFERENCES tickets (id),
  status     TEXT    NOT NULL CHECK (status IN ('created', 'awaiting:payment', 'complete', 'cancelled')),
  expires_at TEXT    NOT NULL,
  price      INTEGER NOT NULL,  -- cents, as reserved
  version    INTEGER NOT NULL,
  created_at TEXT    NOT NULL,
  updated_at TEXT    NOT NULL
) STRICT;

-- One live order per ticket, enforced by SQLite itself: a second
-- reservation fails on this index whatever the timing.
CREATE UNIQUE INDEX orders_one_live_per_ticket ON orders (ticket_id) WHERE status != 'cancelled';

CREATE INDEX orders_by_user ON orders (user_id, created_at DESC);
