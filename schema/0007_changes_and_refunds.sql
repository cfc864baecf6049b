-- billingd data contract, version 7: subscriptions change (price schedule, re-anchored
-- calendar, card changes on an open period, consent) and money comes back (refunds).
--
-- Nothing here adds work to the paid path: the new subscription columns are read with the
-- row billingd already reads, the price schedule is read only when `price_change_period`
-- says an entry is due, and charges gain one column with a plain CHECK.

-- The amount and order name that apply from a period on (a price change, a promotion, a plan
-- change). An entry is applied when the charge of its period, or of a later one, is created:
-- the subscription's amount and order_name then become the entry's. A charge that exists
-- keeps its frozen request; nothing is prorated.
CREATE TABLE price_schedule (
    id              INTEGER PRIMARY KEY,
    subscription_id INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    from_period     INTEGER NOT NULL CHECK (from_period BETWEEN 0 AND 1000000),
    amount          INTEGER NOT NULL CHECK (amount BETWEEN 1 AND 100000000000),
    order_name      TEXT    NOT NULL CHECK (length(order_name) BETWEEN 1 AND 40),
    created_by      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    applied_at      INTEGER,
    UNIQUE (subscription_id, from_period)
) STRICT;

-- price_change_period: the earliest period with an entry not yet applied (NULL: none), so
-- that starting a period reads the schedule only when it changes something.
-- anchor_period: the period index that starts on anchor_date at charge_time. A change of
-- interval or charge time re-anchors the calendar at the next period's start (the earlier
-- periods keep the dates their charges have).
-- consent_period / consent_since: the period held until the customer consents (a price rise
-- or the first period after a trial, with [billing] require_consent), and since when.
-- ADD COLUMN with a CHECK tests the table's CHECKs on every existing row: a row written by hand
-- with the checks bypassed would stop the migration (billingd flags such rows instead).
PRAGMA ignore_check_constraints = ON;
ALTER TABLE subscriptions ADD COLUMN price_change_period INTEGER
    CHECK (price_change_period IS NULL OR price_change_period BETWEEN 0 AND 1000000);
ALTER TABLE subscriptions ADD COLUMN anchor_period INTEGER NOT NULL DEFAULT 0
    CHECK (anchor_period BETWEEN 0 AND 1000000);
ALTER TABLE subscriptions ADD COLUMN consent_period INTEGER
    CHECK (consent_period IS NULL OR consent_period BETWEEN 0 AND 1000000);
ALTER TABLE subscriptions ADD COLUMN consent_since INTEGER;

-- A customer's consent to what takes effect at a period (a price rise, a trial's first
-- charge), recorded by an operator or the merchant's application.
CREATE TABLE consents (
    id              INTEGER PRIMARY KEY,
    subscription_id INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    period_index    INTEGER NOT NULL CHECK (period_index BETWEEN 0 AND 1000000),
    given_at        INTEGER NOT NULL,
    given_by        TEXT    NOT NULL,
    UNIQUE (subscription_id, period_index)
) STRICT;

-- A card change on an open period: the charge's old request (merchant_uid, customer_uid) is
-- canceled after PortOne confirmed it has no paid record of it and no request can still be in
-- progress, and the period is charged again under a new merchant_uid (the old one with
-- "k<n>" appended). The charge row stays the period's only row (UNIQUE per period).
CREATE TABLE charge_rekeys (
    id               INTEGER PRIMARY KEY,
    charge_id        INTEGER NOT NULL REFERENCES charges (id),
    old_merchant_uid TEXT    NOT NULL UNIQUE,
    old_customer_uid TEXT    NOT NULL,
    new_merchant_uid TEXT    NOT NULL UNIQUE,
    new_customer_uid TEXT    NOT NULL CHECK (length(new_customer_uid) BETWEEN 1 AND 80),
    old_state        TEXT    NOT NULL,
    lookup           TEXT    NOT NULL,  -- what PortOne said of the old merchant_uid
    at               INTEGER NOT NULL,
    actor            TEXT    NOT NULL
) STRICT;

-- The request stays fixed, except by a recorded rekey of merchant_uid and customer_uid.
DROP TRIGGER charges_request_is_fixed;
CREATE TRIGGER charges_request_is_fixed
    BEFORE UPDATE OF amount, currency, subscription_id, period_index ON charges
    WHEN NEW.amount IS NOT OLD.amount OR NEW.currency IS NOT OLD.currency
      OR NEW.subscription_id IS NOT OLD.subscription_id
      OR NEW.period_index IS NOT OLD.period_index
BEGIN
    SELECT RAISE(ABORT, 'charges: merchant_uid, amount, customer and period are fixed');
END;
CREATE TRIGGER charges_request_is_rekeyed_only
    BEFORE UPDATE OF merchant_uid, customer_uid ON charges
    WHEN (NEW.merchant_uid IS NOT OLD.merchant_uid OR NEW.customer_uid IS NOT OLD.customer_uid)
     AND NOT EXISTS (SELECT 1 FROM charge_rekeys
                      WHERE charge_id = OLD.id AND old_merchant_uid = OLD.merchant_uid
                        AND new_merchant_uid = NEW.merchant_uid
                        AND new_customer_uid = NEW.customer_uid)
BEGIN
    SELECT RAISE(ABORT, 'charges: merchant_uid, amount, customer and period are fixed');
END;

-- What PortOne has refunded of the charge (billingd's refunds and the console's).
ALTER TABLE charges ADD COLUMN refunded_amount INTEGER NOT NULL DEFAULT 0
    CHECK (refunded_amount >= 0 AND refunded_amount <= amount);

PRAGMA ignore_check_constraints = OFF;

-- Refunds (POST /payments/cancel). `requested` rows are written by billingctl or the API and
-- sent by billingd, written ahead like charges: `sending` is committed before the request
-- leaves; an answer that does not say is `unknown` and the payment is read before anything
-- is sent again, with the same checksum (the cancellable amount before this refund), so that
-- PortOne refuses a second identical cancel. Rows of source 'console' record refunds found
-- in PortOne that billingd did not make.
CREATE TABLE refunds (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_id       INTEGER NOT NULL REFERENCES charges (id),
    subscription_id INTEGER NOT NULL REFERENCES subscriptions (id),
    source          TEXT    NOT NULL CHECK (source = 'billingd' OR source = 'console'),
    state           TEXT    NOT NULL
                            CHECK (state = 'requested' OR state = 'sending' OR
                                   state = 'unknown' OR state = 'refunded' OR state = 'refused'),
    amount          INTEGER NOT NULL CHECK (amount > 0),
    checksum        INTEGER NOT NULL CHECK (checksum >= amount),
    reason          TEXT    NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    requested_by    TEXT    NOT NULL,
    requested_at    INTEGER NOT NULL,
    attempt_count   INTEGER NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    lookup_count    INTEGER NOT NULL DEFAULT 0 CHECK (lookup_count >= 0),
    -- When billingd acts on this row next; NULL while a request is on the wire or when final.
    next_action_at  INTEGER,
    refunded_at     INTEGER,  -- PortOne's cancelled_at
    pg_tid          TEXT,
    cancellation_id TEXT,
    receipt_url     TEXT,
    fail_reason     TEXT,
    updated_at      INTEGER NOT NULL,
    CHECK (state IS NOT 'refunded' OR refunded_at IS NOT NULL)
) STRICT;
-- At most one refund of a charge is open: two concurrent requests cannot both go out.
CREATE UNIQUE INDEX refunds_one_open ON refunds (charge_id)
    WHERE state = 'requested' OR state = 'sending' OR state = 'unknown';
CREATE INDEX refunds_due ON refunds (next_action_at) WHERE next_action_at IS NOT NULL;
CREATE INDEX refunds_of_charge ON refunds (charge_id);
CREATE INDEX refunds_by_time ON refunds (refunded_at, amount) WHERE state = 'refunded';

-- Append-only journal of refund requests, payment reads and console checks (like attempts).
CREATE TABLE refund_attempts (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    refund_id       INTEGER REFERENCES refunds (id),
    charge_id       INTEGER REFERENCES charges (id),
    request_id      INTEGER REFERENCES refund_attempts (id),
    kind            TEXT    NOT NULL
                            CHECK (kind = 'cancel' OR kind = 'payment' OR kind = 'cancelled_list'),
    phase           TEXT    NOT NULL CHECK (phase = 'request' OR phase = 'answer'),
    imp_uid         TEXT,
    amount          INTEGER,
    checksum        INTEGER,
    request_summary TEXT,
    request_written INTEGER CHECK (request_written IS NULL OR request_written = 0 OR
                                   request_written = 1),
    http_status     INTEGER,
    portone_code    INTEGER,
    message         TEXT,
    outcome         TEXT,
    latency_ms      INTEGER,
    raw_answer      TEXT    CHECK (raw_answer IS NULL OR length(CAST(raw_answer AS BLOB)) <= 4096)
) STRICT;
CREATE INDEX refund_attempts_of_refund ON refund_attempts (refund_id);

-- How far the check for refunds made in PortOne's console has read: the cancelled list up to
-- checked_to (UNIX s) at checked_at, and the paid charges read one by one (for partial
-- refunds, which the list does not show) up to the charge id swept_after.
CREATE TABLE refund_checks (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    checked_to  INTEGER,
    checked_at  INTEGER,
    swept_after INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO refund_checks (singleton) VALUES (1);

-- Operators' views.
CREATE VIEW refunds_recent AS
SELECT r.id, r.charge_id, r.subscription_id, c.merchant_uid, c.imp_uid, r.source, r.state,
       r.amount, c.amount AS paid_amount, c.refunded_amount, r.reason, r.requested_by,
       datetime(r.requested_at + (SELECT utc_offset FROM reporting_offsets
                                   WHERE valid_from <= r.requested_at
                                   ORDER BY valid_from DESC LIMIT 1), 'unixepoch')
           AS requested_local,
       datetime(r.refunded_at + (SELECT utc_offset FROM reporting_offsets
                                  WHERE valid_from <= r.refunded_at
                                  ORDER BY valid_from DESC LIMIT 1), 'unixepoch')
           AS refunded_local,
       r.fail_reason
  FROM refunds r JOIN charges c ON c.id = r.charge_id
 ORDER BY r.id DESC
 LIMIT 200;

CREATE VIEW held_for_consent AS
SELECT s.id AS subscription_id, s.customer_uid, s.consent_period AS period_index,
       s.amount AS amount_now,
       coalesce((SELECT p.amount FROM price_schedule p
                  WHERE p.subscription_id = s.id AND p.from_period <= s.consent_period
                  ORDER BY p.from_period DESC LIMIT 1), s.amount) AS amount_held,
       datetime(s.consent_since + (SELECT utc_offset FROM reporting_offsets
                                    WHERE valid_from <= s.consent_since
                                    ORDER BY valid_from DESC LIMIT 1), 'unixepoch')
           AS held_since_local
  FROM subscriptions s
 WHERE s.consent_period IS NOT NULL;

CREATE VIEW price_changes_pending AS
SELECT p.subscription_id, p.from_period, s.amount AS amount_now, p.amount AS amount_from,
       p.order_name, p.created_by,
       datetime(p.created_at + (SELECT utc_offset FROM reporting_offsets
                                 WHERE valid_from <= p.created_at
                                 ORDER BY valid_from DESC LIMIT 1), 'unixepoch') AS created_local
  FROM price_schedule p JOIN subscriptions s ON s.id = p.subscription_id
 WHERE p.applied_at IS NULL
 ORDER BY p.subscription_id, p.from_period;

-- Revenue net of refunds: a refund counts on the local day PortOne made it.
DROP VIEW revenue_per_month;
DROP VIEW revenue_per_day;
CREATE VIEW revenue_per_day AS
SELECT day AS day_local, currency, sum(charges) AS charges, sum(amount) AS amount,
       sum(refunded) AS refunded, sum(amount) - sum(refunded) AS net
  FROM (SELECT day, currency, charges, amount, 0 AS refunded FROM revenue_daily
         WHERE day < coalesce((SELECT d.day FROM reporting_days d, reporting_state r
                                WHERE d.starts_at = r.rolled_until), '0000')
        UNION ALL
        SELECT d.day, c.currency, count(*), sum(c.amount), 0
          FROM reporting_days d
          JOIN charges c INDEXED BY charges_paid
            ON c.state = 'paid' AND c.paid_at >= d.starts_at AND c.paid_at < d.ends_at
         WHERE d.starts_at >= coalesce((SELECT rolled_until FROM reporting_state), 0)
           AND d.ends_at > (SELECT min(paid_at) FROM charges WHERE state = 'paid')
           AND d.starts_at <= (SELECT max(paid_at) FROM charges WHERE state = 'paid')
         GROUP BY d.day, c.currency
        UNION ALL
        SELECT d.day, c.currency, 0, 0, sum(r.amount)
          FROM reporting_days d
          JOIN refunds r INDEXED BY refunds_by_time
            ON r.state = 'refunded' AND r.refunded_at >= d.starts_at AND r.refunded_at < d.ends_at
          JOIN charges c ON c.id = r.charge_id
         WHERE d.ends_at > (SELECT min(refunded_at) FROM refunds WHERE state = 'refunded')
           AND d.starts_at <= (SELECT max(refunded_at) FROM refunds WHERE state = 'refunded')
         GROUP BY d.day, c.currency)
 GROUP BY day, currency
 ORDER BY day DESC, currency;

CREATE VIEW revenue_per_month AS
SELECT substr(day_local, 1, 7) AS month_local, currency, sum(charges) AS charges,
       sum(amount) AS amount, sum(refunded) AS refunded, sum(net) AS net
  FROM revenue_per_day
 GROUP BY 1, 2
 ORDER BY 1 DESC, 2;
