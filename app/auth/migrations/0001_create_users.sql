-- Users sign in with an email address, stored normalised (trimmed and
-- lowercased) so that Foo@Example.com and foo@example.com are one account.
CREATE TABLE users (
  id            TEXT PRIMARY KEY,
  email         TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  created_at    TEXT NOT NULL
) STRICT;

CREATE UNIQUE INDEX users_email ON users (email);
