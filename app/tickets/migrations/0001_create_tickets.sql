-- Tickets for sale. order_id is set while an order holds the ticket
-- (reserved, then sold); NULL means it is on sale.
CREATE TABLE tickets (
  id         TEXT    PRIMARY KEY,
  title      TEXT    NOT NULL CHECK (length(title) BETWEEN 1 AND 120),
  price      INTEGER NOT NULL CHECK (price > 0),   -- cents
  user_id    TEXT    NOT NULL,
  version    INTEGER NOT NULL,
  order_id   TEXT,
  created_at TEXT    NOT NULL,
  updated_at TEXT    NOT NULL
) STRICT;

-- The list of tickets on sale, newest first, reads only this index: its
-- size follows the tickets on sale, not those reserved or sold.
CREATE INDEX tickets_on_sale ON tickets (created_at DESC, id DESC) WHERE order_id IS NULL;

CREATE INDEX tickets_by_user ON tickets (user_id, created_at DESC);
