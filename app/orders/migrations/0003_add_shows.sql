-- The orders module's copy of the shows, from the tickets module's
-- show:created and show:updated: a show's start bounds its reservations
-- (none once it has begun, and none that outlives it), and the order page
-- says which show, where and when. And each ticket's show and seat.
CREATE TABLE shows (
  id        TEXT    PRIMARY KEY,
  title     TEXT    NOT NULL,
  venue     TEXT    NOT NULL,
  city      TEXT    NOT NULL,
  starts_at TEXT    NOT NULL,
  time_zone TEXT    NOT NULL,
  version   INTEGER NOT NULL
) STRICT;

ALTER TABLE tickets ADD COLUMN show_id TEXT;
ALTER TABLE tickets ADD COLUMN section TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN seat_row TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN seat TEXT NOT NULL DEFAULT '';
