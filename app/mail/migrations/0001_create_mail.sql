-- The mail module's copies of what its messages say, from the other
-- modules' events: who people are (auth), what a ticket and its show are
-- (tickets), and each order (orders).
CREATE TABLE recipients (
  user_id TEXT PRIMARY KEY,
  email   TEXT NOT NULL,
  name    TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE TABLE tickets (
  id        TEXT    PRIMARY KEY,
  seller_id TEXT    NOT NULL,
  title     TEXT    NOT NULL,
  show_id   TEXT,
  section   TEXT    NOT NULL DEFAULT '',
  seat_row  TEXT    NOT NULL DEFAULT '',
  seat      TEXT    NOT NULL DEFAULT '',
  version   INTEGER NOT NULL
) STRICT;

CREATE TABLE shows (
  id        TEXT    PRIMARY KEY,
  title     TEXT    NOT NULL,
  venue     TEXT    NOT NULL,
  city      TEXT    NOT NULL,
  starts_at TEXT    NOT NULL,
  time_zone TEXT    NOT NULL,
  version   INTEGER NOT NULL
) STRICT;

CREATE TABLE orders (
  id        TEXT    PRIMARY KEY,
  buyer_id  TEXT    NOT NULL,
  ticket_id TEXT    NOT NULL,
  price     INTEGER NOT NULL, -- cents, as reserved
  status    TEXT    NOT NULL
) STRICT;

-- The outbox: every message the shop owes, written in the same
-- transaction as the consumer position of the event that called for it.
-- key makes one message per reason (a replayed event writes nothing new);
-- message_id is its stable Message-ID, so a message sent again after a
-- crash between sending and marking it is visibly the same one.
CREATE TABLE messages (
  id           TEXT    PRIMARY KEY,
  key          TEXT    NOT NULL UNIQUE,  -- 'receipt:<order id>'
  kind         TEXT    NOT NULL,
  to_user      TEXT    NOT NULL,
  to_email     TEXT    NOT NULL,
  subject      TEXT    NOT NULL,
  text_body    TEXT    NOT NULL,
  html_body    TEXT    NOT NULL,
  message_id   TEXT    NOT NULL,
  created_at   TEXT    NOT NULL,
  status       TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'kept')),
  attempts     INTEGER NOT NULL DEFAULT 0,
  next_at      TEXT    NOT NULL,          -- when the sender may try it (again)
  sent_at      TEXT,
  last_error   TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX messages_due ON messages (next_at) WHERE status = 'pending';
CREATE INDEX messages_to ON messages (to_user, created_at DESC);
