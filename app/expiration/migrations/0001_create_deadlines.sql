-- When each live order's reservation runs out. A row lives from
-- order:created until the order is cancelled, completed, or swept.
CREATE TABLE deadlines (
  order_id   TEXT PRIMARY KEY,
  expires_at TEXT NOT NULL
) STRICT;

CREATE INDEX deadlines_due ON deadlines (expires_at);
