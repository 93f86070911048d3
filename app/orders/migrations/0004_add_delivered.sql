-- The tickets their sellers attached (the delivery module's
-- ticket:delivered; its own table, since that event may come before the
-- ticket's copy does): a paid order's page offers "Download your ticket".
CREATE TABLE delivered (ticket_id TEXT PRIMARY KEY) STRICT;
