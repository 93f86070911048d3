-- Set when the payments module refunds a payment for this order (it came
-- after the order was cancelled or expired), so the order page can say so.
ALTER TABLE orders ADD COLUMN refunded INTEGER NOT NULL DEFAULT 0;
