-- The tickets their sellers attached (the delivery module's
-- ticket:delivered; its own table, since that event may come before the
-- ticket's copy does): without it, a sale tells the seller they still owe
-- the ticket, and its arrival tells the buyer.
CREATE TABLE delivered (ticket_id TEXT PRIMARY KEY) STRICT;
