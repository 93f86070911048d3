-- The ticket itself, as the seller hands it over: a file (PDF, PNG or
-- JPEG, up to 5 MB, kept here so it rides the same backups as the rest)
-- or a barcode's value and format. Who may have it is learnt from events:
-- each ticket's seller (tickets), each complete order's buyer (orders:
-- only a complete order gives the ticket; none is ever cancelled or
-- refunded after).
CREATE TABLE tickets (
  id        TEXT PRIMARY KEY,
  seller_id TEXT NOT NULL
) STRICT;

-- The sales: complete orders, the only ones that give their buyer the
-- ticket.
CREATE TABLE sales (
  order_id  TEXT PRIMARY KEY,
  ticket_id TEXT NOT NULL,
  buyer_id  TEXT NOT NULL
) STRICT;

CREATE INDEX sales_by_ticket ON sales (ticket_id);

CREATE TABLE attachments (
  ticket_id      TEXT    PRIMARY KEY,
  kind           TEXT    NOT NULL CHECK (kind IN ('file', 'barcode')),
  content_type   TEXT    NOT NULL DEFAULT '', -- of a file, from its content
  file_name      TEXT    NOT NULL DEFAULT '',
  data           BLOB,                        -- a file's bytes
  barcode        TEXT    NOT NULL DEFAULT '',
  barcode_format TEXT    NOT NULL DEFAULT '' CHECK (barcode_format IN ('', 'qr', 'code128')),
  size           INTEGER NOT NULL,
  sha256         TEXT    NOT NULL,
  created_at     TEXT    NOT NULL,
  updated_at     TEXT    NOT NULL
) STRICT;

-- Every download: who, when.
CREATE TABLE downloads (
  seq       INTEGER PRIMARY KEY AUTOINCREMENT,
  ticket_id TEXT NOT NULL,
  user_id   TEXT NOT NULL,
  at        TEXT NOT NULL
) STRICT;
