-- Who holds the ticket (the holding order's buyer, from order:created), so
-- that a reserved or sold ticket's page can link its buyer to their order.
ALTER TABLE tickets ADD COLUMN buyer_id TEXT;
