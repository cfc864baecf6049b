-- billingd data contract, version 4: a subscription's schedule moves on when a period's charge
-- is created, not when it settles.
--
-- next_period is always the next period to create a charge for and next_due_at when it is
-- due; the period before it may still be open (in doubt, in dunning, parked). A period that
-- falls due while the one before is open waits unscheduled (next_due_at NULL) until that
-- charge settles. This saves a write of the subscription per paid charge.
--
-- Rows written by earlier versions pointed next_period at the period of their open (or
-- closed) charge: they move on by one, with the schedule they had.

UPDATE subscriptions SET next_period = next_period + 1
 WHERE next_period < 1000000
   AND EXISTS (SELECT 1 FROM charges c
                WHERE c.subscription_id = subscriptions.id
                  AND c.period_index = subscriptions.next_period);
