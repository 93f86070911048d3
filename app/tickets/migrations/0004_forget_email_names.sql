-- Sellers were shown by their email's local part ("sold by john.smith"),
-- which is personal data made public. Names now come only from what the
-- user chose (auth's display name): forget the derived ones. A seller
-- without a name is shown without one until they choose it.
UPDATE sellers SET name = '';
