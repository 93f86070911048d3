-- Whether the seller attached the ticket itself (the delivery module's
-- ticket:delivered): the lists say "Instant download".
ALTER TABLE tickets ADD COLUMN delivered INTEGER NOT NULL DEFAULT 0;
