-- billingd data contract, version 2: a merchant_uid namespace per database.
--
-- merchant_uid = <install_id>-<uid_key>-p<period>. The install id is created with the
-- database (install table) and the uid_key with each subscription (a column DEFAULT, so an
-- INSERT written by hand gets one too). Both are random and stored, so two databases on one
-- PortOne account (staging and production, a re-created or restored database) never mint
-- the same merchant_uid, and every retry of a period reuses its own. Charges that exist keep
-- the merchant_uid they were created with.
--
-- Runs with foreign_keys off (the migration runner turns them off and checks them after):
-- the subscriptions table is rebuilt for AUTOINCREMENT (ids are never reused) and uid_key.

CREATE TABLE install (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    -- The first part of every new merchant_uid. NULL until billingd or billingctl first
    -- opens the database: then it becomes the configured merchant_uid_prefix, or random.
    -- A configuration naming another prefix is refused from then on.
    install_id  TEXT    CHECK (install_id IS NULL OR
                               (length(install_id) BETWEEN 1 AND 12 AND
                                install_id NOT GLOB '*[^A-Za-z0-9_-]*')),
    created_at  INTEGER NOT NULL DEFAULT (unixepoch()),
    -- When billingd first ran on the real clock. `--as-of` (a test clock) refuses such a
    -- database: simulated time would mark real periods skipped and charge them early.
    live_since  INTEGER
) STRICT;

-- A database from version 1 keeps the prefix its charges were made with
-- ("<prefix>-s<id>-p<n>"), so its configuration stays valid; without one it gets a random id.
INSERT INTO install (singleton, install_id, live_since)
SELECT 1,
       (SELECT nullif(substr(merchant_uid, 1,
                             instr(merchant_uid, '-s' || subscription_id || '-p') - 1), '')
          FROM charges ORDER BY id DESC LIMIT 1),
       (SELECT min(at) FROM attempts);

CREATE TRIGGER install_no_delete BEFORE DELETE ON install
BEGIN
    SELECT RAISE(ABORT, 'install: the install id is part of every merchant_uid');
END;
CREATE TRIGGER install_id_is_fixed BEFORE UPDATE OF install_id ON install
    WHEN OLD.install_id IS NOT NULL AND NEW.install_id IS NOT OLD.install_id
BEGIN
    SELECT RAISE(ABORT, 'install: the install id is part of every merchant_uid');
END;

DROP VIEW due_now;
DROP VIEW parked;

CREATE TABLE subscriptions_v2 (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The second part of every merchant_uid of this subscription; random, set once.
    uid_key              TEXT    NOT NULL UNIQUE DEFAULT (lower(hex(randomblob(8))))
                                 CHECK (length(uid_key) BETWEEN 8 AND 16 AND
                                        uid_key NOT GLOB '*[^0-9a-z]*'),
    customer_uid         TEXT    NOT NULL CHECK (length(customer_uid) BETWEEN 1 AND 80),
    amount               INTEGER NOT NULL CHECK (amount > 0),
    -- KRW only until amounts are converted per currency exponent (a $9.99 plan must not be
    -- sent as 999 dollars). A row of another currency from version 1 is kept, flagged.
    currency             TEXT    NOT NULL DEFAULT 'KRW',
    order_name           TEXT    NOT NULL CHECK (length(order_name) BETWEEN 1 AND 40),
    interval_unit        TEXT    NOT NULL CHECK (interval_unit IN ('day', 'week', 'month', 'year')),
    interval_count       INTEGER NOT NULL DEFAULT 1 CHECK (interval_count BETWEEN 1 AND 1000),
    anchor_date          TEXT    NOT NULL CHECK (date(anchor_date, '+0 days') IS anchor_date),
    charge_time          TEXT    NOT NULL DEFAULT '10:00'
                                 CHECK (length(charge_time) = 5 AND
                                        time(charge_time || ':00') IS charge_time || ':00'),
    time_zone            TEXT    NOT NULL DEFAULT 'Asia/Seoul'
                                 CHECK (length(time_zone) BETWEEN 1 AND 64),
    status               TEXT    NOT NULL DEFAULT 'active'
                                 CHECK (status IN ('trialing', 'active', 'past_due', 'unpaid',
                                                   'paused', 'canceled', 'ended')),
    -- No period is charged before this instant (a period that starts during the trial is
    -- charged when the trial ends).
    trial_end_at         INTEGER,
    cancel_at_period_end INTEGER NOT NULL DEFAULT 0 CHECK (cancel_at_period_end IN (0, 1)),
    max_periods          INTEGER CHECK (max_periods IS NULL OR max_periods BETWEEN 1 AND 1000000),
    buyer_name           TEXT    CHECK (buyer_name IS NULL OR length(buyer_name) <= 100),
    buyer_email          TEXT    CHECK (buyer_email IS NULL OR length(buyer_email) <= 200),
    buyer_tel            TEXT    CHECK (buyer_tel IS NULL OR length(buyer_tel) <= 40),
    next_period          INTEGER NOT NULL DEFAULT 0 CHECK (next_period BETWEEN 0 AND 1000000),
    next_due_at          INTEGER,
    needs_attention      TEXT,
    created_at           INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at           INTEGER NOT NULL DEFAULT (unixepoch()),
    CHECK (currency = 'KRW' OR needs_attention IS NOT NULL)
) STRICT;

INSERT INTO subscriptions_v2
    (id, customer_uid, amount, currency, order_name, interval_unit, interval_count,
     anchor_date, charge_time, time_zone, status, trial_end_at, cancel_at_period_end,
     max_periods, buyer_name, buyer_email, buyer_tel, next_period, next_due_at,
     needs_attention, created_at, updated_at)
SELECT id, customer_uid, amount, currency, order_name, interval_unit, interval_count,
       anchor_date, charge_time, time_zone, status, trial_end_at, cancel_at_period_end,
       min(max_periods, 1000000), buyer_name, buyer_email, buyer_tel,
       min(next_period, 1000000), next_due_at,
       coalesce(needs_attention,
                CASE WHEN currency <> 'KRW'
                     THEN 'currency ' || currency || ' is not supported (KRW only)'
                     WHEN next_period > 1000000 THEN 'next_period out of range' END),
       created_at, updated_at
  FROM subscriptions;

DROP TABLE subscriptions;
ALTER TABLE subscriptions_v2 RENAME TO subscriptions;

CREATE TRIGGER subscriptions_uid_key_is_fixed BEFORE UPDATE OF uid_key ON subscriptions
    WHEN NEW.uid_key IS NOT OLD.uid_key
BEGIN
    SELECT RAISE(ABORT, 'subscriptions: uid_key is part of every merchant_uid of the subscription');
END;

CREATE INDEX subscriptions_due ON subscriptions (next_due_at)
    WHERE next_due_at IS NOT NULL AND needs_attention IS NULL
      AND status IN ('trialing', 'active', 'past_due');
CREATE INDEX subscriptions_unscheduled ON subscriptions (id)
    WHERE next_due_at IS NULL AND needs_attention IS NULL
      AND status IN ('trialing', 'active', 'past_due');

-- Refusals: PortOne received a charge and answered without a payment (an enveloped
-- code != 0, or HTTP 400). `last_refusal` holds PortOne's message until the lookup that
-- follows decides: a new record settles the charge; none makes it a counted refusal.
ALTER TABLE charges ADD COLUMN refusal_count INTEGER NOT NULL DEFAULT 0
    CHECK (refusal_count >= 0);
ALTER TABLE charges ADD COLUMN last_refusal TEXT;

-- The hourly guardrail counts charge requests of the last hour from the journal, so a
-- restart does not grant a fresh quota; the trust floor reads the latest one per charge.
CREATE INDEX attempts_charge_requests ON attempts (at) WHERE kind = 'charge' AND phase = 'request';

CREATE VIEW due_now AS
SELECT 'subscription' AS what, s.id AS subscription_id, NULL AS charge_id,
       s.customer_uid, s.amount, s.currency, 'period ' || s.next_period AS detail,
       datetime(s.next_due_at, 'unixepoch', 'localtime') AS due_local
  FROM subscriptions s
 WHERE s.next_due_at IS NOT NULL AND s.next_due_at <= unixepoch()
   AND s.needs_attention IS NULL AND s.status IN ('trialing', 'active', 'past_due')
UNION ALL
SELECT 'charge', c.subscription_id, c.id, c.customer_uid, c.amount, c.currency,
       c.state || ' ' || c.merchant_uid, datetime(c.next_action_at, 'unixepoch', 'localtime')
  FROM charges c
 WHERE c.next_action_at IS NOT NULL AND c.next_action_at <= unixepoch();

CREATE VIEW parked AS
SELECT 'charge' AS what, c.id AS charge_id, c.subscription_id, c.merchant_uid, c.customer_uid,
       c.amount, c.currency, c.park_reason AS reason,
       datetime(c.updated_at, 'unixepoch', 'localtime') AS since_local
  FROM charges c
 WHERE c.state = 'parked'
UNION ALL
SELECT 'subscription', NULL, s.id, NULL, s.customer_uid, s.amount, s.currency,
       s.needs_attention, datetime(s.updated_at, 'unixepoch', 'localtime')
  FROM subscriptions s
 WHERE s.needs_attention IS NOT NULL;
