-- Shows: who plays, where and when. A listing for a show adds its seat
-- (section, row, seat, each optional: "general admission" is common) and
-- the face value printed on the ticket, which caps the asking price.
-- starts_at is the instant in UTC; time_zone is the venue's IANA zone,
-- in which the show's time is always shown, and local_date the venue's
-- calendar day of the start (what a date filter means).
CREATE TABLE shows (
  id          TEXT    PRIMARY KEY,
  title       TEXT    NOT NULL CHECK (length(title) BETWEEN 1 AND 120),
  venue       TEXT    NOT NULL CHECK (length(venue) BETWEEN 1 AND 120),
  city        TEXT    NOT NULL CHECK (length(city) BETWEEN 1 AND 80),
  country     TEXT    NOT NULL CHECK (length(country) BETWEEN 1 AND 60),
  starts_at   TEXT    NOT NULL,
  time_zone   TEXT    NOT NULL,
  local_date  TEXT    NOT NULL,
  description TEXT    NOT NULL DEFAULT '',
  user_id     TEXT    NOT NULL,  -- who added it: they may edit it until a ticket for it sells
  version     INTEGER NOT NULL,
  created_at  TEXT    NOT NULL,
  updated_at  TEXT    NOT NULL,
  -- Derived from its listings in the same transaction as every change to
  -- one (never from events): what the lists of shows show and sort by.
  on_sale     INTEGER NOT NULL DEFAULT 0,
  min_price   INTEGER            -- cents; NULL when none is on sale
) STRICT;

CREATE INDEX shows_by_start ON shows (starts_at, id);
CREATE INDEX shows_by_city ON shows (city COLLATE NOCASE, starts_at);

ALTER TABLE tickets ADD COLUMN show_id TEXT REFERENCES shows (id);
ALTER TABLE tickets ADD COLUMN section TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN seat_row TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN seat TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN face_value INTEGER CHECK (face_value > 0); -- cents

-- A show's tickets on sale, cheapest first (its page, its lowest price
-- and count), and the tickets on sale that belong to no show (the front
-- page's other listings), newest first.
CREATE INDEX tickets_show_on_sale ON tickets (show_id, price, id) WHERE order_id IS NULL AND show_id IS NOT NULL;
CREATE INDEX tickets_showless_on_sale ON tickets (created_at DESC, id DESC) WHERE order_id IS NULL AND show_id IS NULL;
CREATE INDEX tickets_by_show ON tickets (show_id) WHERE show_id IS NOT NULL;
