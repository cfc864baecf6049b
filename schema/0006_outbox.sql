-- billingd data contract: event delivery (the transactional outbox's other half).
--
-- `events` is the outbox: every change writes its event row in the change's own transaction.
-- Delivery state lives here, written only by billingd's delivery worker in its own short
-- transactions, never in a charging transaction:
--   * one cursor per configured channel ('webhook', 'exec'): every event with id <= cursor
--     was delivered, is not a merchant event, or has a row in outbox_deliveries;
--   * a row per event that is not delivered yet although the cursor passed it: it failed and
--     waits for its retry, it waits behind an earlier event of its subscription, or it is
--     dead (retried past the horizon). A delivered event's row is deleted.
-- A channel configured for the first time starts at the newest event (no history is sent).

CREATE TABLE outbox_channels (
    channel     TEXT    PRIMARY KEY CHECK (channel IN ('webhook', 'exec')),
    cursor      INTEGER NOT NULL CHECK (cursor >= 0),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE outbox_deliveries (
    channel         TEXT    NOT NULL REFERENCES outbox_channels (channel),
    event_id        INTEGER NOT NULL REFERENCES events (id),
    -- Copied from the event: deliveries of one subscription go out in event order.
    subscription_id INTEGER,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- When the next attempt may start (pending); a row behind an earlier pending one of its
    -- subscription waits for that one whatever this says.
    next_attempt_at INTEGER,
    last_attempt_at INTEGER,
    last_error      TEXT    CHECK (last_error IS NULL OR length(last_error) <= 1000),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (channel, event_id)
) STRICT;
CREATE INDEX outbox_deliveries_due ON outbox_deliveries (channel, next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX outbox_deliveries_by_subscription
    ON outbox_deliveries (channel, subscription_id, event_id) WHERE state = 'pending';

-- Notices ahead of time (charge.upcoming, subscription.trial_will_end): at most one per
-- subscription, kind and period, whatever restarts or catch-up happen.
CREATE TABLE outbox_notices (
    subscription_id INTEGER NOT NULL REFERENCES subscriptions (id),
    kind            TEXT    NOT NULL,
    period_index    INTEGER NOT NULL,
    event_id        INTEGER NOT NULL REFERENCES events (id),
    PRIMARY KEY (subscription_id, kind, period_index)
) STRICT;

-- Deliveries an operator may look at: failing (retrying), waiting behind a failing one, and
-- dead (given up; `billingctl events redeliver` sends them again).
CREATE VIEW event_deliveries AS
SELECT d.channel, d.event_id, e.kind, d.subscription_id, e.charge_id,
       CASE WHEN d.state = 'dead' THEN 'dead'
            WHEN d.attempts = 0 THEN 'waiting'
            ELSE 'failing' END AS status,
       d.attempts, d.last_error,
       datetime(e.at, 'unixepoch', 'localtime') AS event_at_local,
       datetime(d.last_attempt_at, 'unixepoch', 'localtime') AS last_attempt_local,
       datetime(d.next_attempt_at, 'unixepoch', 'localtime') AS next_attempt_local
  FROM outbox_deliveries d
  JOIN events e ON e.id = d.event_id;
