-- The name buyers see on a seller's listings, chosen by the user (never
-- derived from the email: that would publish personal data). '' until
-- one is chosen; accounts from before display names have none.
ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
