-- One-time password reset links. Only a hash of each link's token is
-- kept: the token is derived from the reset's id with a key of the
-- install's own (see Store.resetToken), so neither this file nor the mail
-- module's, nor a backup of them, holds a link that works.
CREATE TABLE password_resets (
  id         TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  user_id    TEXT NOT NULL REFERENCES users (id),
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  used_at    TEXT
) STRICT;

CREATE INDEX password_resets_user ON password_resets (user_id);
