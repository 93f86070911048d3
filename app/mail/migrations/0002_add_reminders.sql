-- An unpaid order's deadline, for the reminder sent 5 minutes before it
-- (once: reminded).
ALTER TABLE orders ADD COLUMN created_at TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN expires_at TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN reminded INTEGER NOT NULL DEFAULT 0;
CREATE INDEX orders_to_remind ON orders (expires_at) WHERE status = 'created' AND reminded = 0;
