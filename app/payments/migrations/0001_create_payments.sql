-- The payments module's copy of the orders, from the orders module's
-- events: enough to price a checkout and to know whether a payment that
-- arrives may complete the order or must be refunded.
CREATE TABLE orders (
  id      TEXT    PRIMARY KEY,
  user_id TEXT    NOT NULL,
  title   TEXT    NOT NULL,
  price   INTEGER NOT NULL,  -- cents, as reserved
  status  TEXT    NOT NULL,
  version INTEGER NOT NULL
) STRICT;

-- Money received. stripe_id is the PaymentIntent: one row per PaymentIntent
-- however many times Stripe tells us about it. A payment is kept
-- (succeeded) or given back (refund_pending until Stripe confirms, then
-- refunded).
CREATE TABLE payments (
  id         TEXT    PRIMARY KEY,
  order_id   TEXT    NOT NULL,
  stripe_id  TEXT    NOT NULL UNIQUE,
  session_id TEXT,
  amount     INTEGER NOT NULL,
  status     TEXT    NOT NULL CHECK (status IN ('succeeded', 'refund_pending', 'refunded')),
  refund_id  TEXT,
  created_at TEXT    NOT NULL,
  updated_at TEXT    NOT NULL
) STRICT;

CREATE INDEX payments_by_order ON payments (order_id);
-- At most one kept payment per order: a second one is refunded.
CREATE UNIQUE INDEX payments_one_kept_per_order ON payments (order_id) WHERE status = 'succeeded';
CREATE INDEX payments_refund_pending ON payments (created_at) WHERE status = 'refund_pending';

-- Stripe Checkout Sessions, one per order and attempt. expire_pending: the
-- order ended and the session must be expired through the API.
CREATE TABLE checkout_sessions (
  id         TEXT    PRIMARY KEY,
  order_id   TEXT    NOT NULL,
  attempt    INTEGER NOT NULL,
  url        TEXT    NOT NULL,
  status     TEXT    NOT NULL CHECK (status IN ('open', 'expire_pending', 'expired', 'complete')),
  created_at TEXT    NOT NULL,
  UNIQUE (order_id, attempt)
) STRICT;

CREATE INDEX checkout_sessions_expire_pending ON checkout_sessions (created_at) WHERE status = 'expire_pending';

-- Stripe events already processed: a repeated delivery is a no-op.
CREATE TABLE stripe_events (
  id          TEXT PRIMARY KEY,
  type        TEXT NOT NULL,
  received_at TEXT NOT NULL
) STRICT;
