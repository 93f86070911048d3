-- A session is one sign-in of one browser or client. The cookie names its
-- row; signing out deletes the row, so a copy of the cookie taken before
-- stops working at once, wherever it is used.
CREATE TABLE sessions (
  id         TEXT PRIMARY KEY,  -- 128 random bits, hex
  user_id    TEXT NOT NULL REFERENCES users (id),
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL
) STRICT;

CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);
