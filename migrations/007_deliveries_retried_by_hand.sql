-- A delivery retried by hand (RetryDelivery, `medic deliveries retry`) is
-- marked, so that the claim never skips it as a RESOLVE to a target that got
-- none of the alert's earlier events: the operator asked for it to be sent.
-- (A constant default: no table rewrite.)
ALTER TABLE deliveries ADD COLUMN retried_by_hand boolean NOT NULL DEFAULT false;
