-- billingd data contract, version 4: what a paid charge costs the database.
--
-- 1. A subscription's schedule moves on when a period's charge is created (the charge row is
--    inserted already `sending`, as its request is written ahead), not when it settles:
--    next_period is always the next period to create a charge for and next_due_at when it is
--    due. The period before it may still be open (in doubt, in dunning, parked); a period that
--    falls due while the one before is open waits unscheduled (next_due_at NULL) until that
--    charge settles. A paid charge writes the subscription once instead of twice. Rows
--    written by earlier versions pointed next_period at the period of their latest charge:
--    they move on by one, with the schedule they had.
--
-- 2. Value lists in CHECK constraints and partial-index conditions are spelled as OR chains.
--    SQLite evaluates `x IN (a, b, c)` with three or more constants through a temporary
--    table built anew for every statement that checks it: on the charge path that was most
--    of the CPU a charge cost. The tables are rebuilt with the same columns, rows and ids.

-- Rows are copied as they are, also rows written with the checks bypassed (billingd flags
-- those it cannot bill); views and triggers an operator added keep their text and work on the
-- rebuilt tables (triggers on the rebuilt tables themselves are dropped with them).
PRAGMA ignore_check_constraints = ON;
PRAGMA legacy_alter_table = ON;

DROP VIEW due_now;
DROP VIEW in_doubt;
DROP VIEW parked;
DROP VIEW recent_attempts;
DROP VIEW revenue_per_day;

CREATE TABLE subscriptions_v4 (
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
    interval_unit        TEXT    NOT NULL CHECK (interval_unit = 'day' OR interval_unit = 'week' OR
                                                 interval_unit = 'month' OR interval_unit = 'year'),
    interval_count       INTEGER NOT NULL DEFAULT 1 CHECK (interval_count BETWEEN 1 AND 1000),
    anchor_date          TEXT    NOT NULL CHECK (date(anchor_date, '+0 days') IS anchor_date),
    charge_time          TEXT    NOT NULL DEFAULT '10:00'
                                 CHECK (length(charge_time) = 5 AND
                                        time(charge_time || ':00') IS charge_time || ':00'),
    time_zone            TEXT    NOT NULL DEFAULT 'Asia/Seoul'
                                 CHECK (length(time_zone) BETWEEN 1 AND 64),
    status               TEXT    NOT NULL DEFAULT 'active'
                                 CHECK (status = 'trialing' OR status = 'active' OR
                                        status = 'past_due' OR status = 'unpaid' OR
                                        status = 'paused' OR status = 'canceled' OR
                                        status = 'ended'),
    -- No period is charged before this instant (a period that starts during the trial is
    -- charged when the trial ends).
    trial_end_at         INTEGER,
    cancel_at_period_end INTEGER NOT NULL DEFAULT 0 CHECK (cancel_at_period_end IN (0, 1)),
    max_periods          INTEGER CHECK (max_periods IS NULL OR max_periods BETWEEN 1 AND 1000000),
    buyer_name           TEXT    CHECK (buyer_name IS NULL OR length(buyer_name) <= 100),
    buyer_email          TEXT    CHECK (buyer_email IS NULL OR length(buyer_email) <= 200),
    buyer_tel            TEXT    CHECK (buyer_tel IS NULL OR length(buyer_tel) <= 40),
    -- The next period to create a charge for, and when it is due (NULL: not scheduled, e.g.
    -- waiting for the period before it to settle, or none left).
    next_period          INTEGER NOT NULL DEFAULT 0 CHECK (next_period BETWEEN 0 AND 1000000),
    next_due_at          INTEGER,
    needs_attention      TEXT,
    created_at           INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at           INTEGER NOT NULL DEFAULT (unixepoch()),
    CHECK (currency = 'KRW' OR needs_attention IS NOT NULL)
) STRICT;

INSERT INTO subscriptions_v4
    (id, uid_key, customer_uid, amount, currency, order_name, interval_unit, interval_count,
     anchor_date, charge_time, time_zone, status, trial_end_at, cancel_at_period_end,
     max_periods, buyer_name, buyer_email, buyer_tel, next_period, next_due_at,
     needs_attention, created_at, updated_at)
SELECT s.id, s.uid_key, s.customer_uid, s.amount, s.currency, s.order_name, s.interval_unit,
       s.interval_count, s.anchor_date, s.charge_time, s.time_zone, s.status, s.trial_end_at,
       s.cancel_at_period_end, s.max_periods, s.buyer_name, s.buyer_email, s.buyer_tel,
       s.next_period + (s.next_period < 1000000 AND
                        EXISTS (SELECT 1 FROM charges c WHERE c.subscription_id = s.id
                                                          AND c.period_index = s.next_period)),
       s.next_due_at, s.needs_attention, s.created_at, s.updated_at
  FROM subscriptions s;

-- Subscription ids are never reused: keep the counter where it was.
UPDATE sqlite_sequence
   SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'subscriptions'), 0))
 WHERE name = 'subscriptions_v4';

DROP TABLE subscriptions;
ALTER TABLE subscriptions_v4 RENAME TO subscriptions;

CREATE TRIGGER subscriptions_uid_key_is_fixed BEFORE UPDATE OF uid_key ON subscriptions
    WHEN NEW.uid_key IS NOT OLD.uid_key
BEGIN
    SELECT RAISE(ABORT, 'subscriptions: uid_key is part of every merchant_uid of the subscription');
END;

CREATE INDEX subscriptions_due ON subscriptions (next_due_at)
    WHERE next_due_at IS NOT NULL AND needs_attention IS NULL
      AND (status = 'trialing' OR status = 'active' OR status = 'past_due');
CREATE INDEX subscriptions_unscheduled ON subscriptions (id)
    WHERE next_due_at IS NULL AND needs_attention IS NULL
      AND (status = 'trialing' OR status = 'active' OR status = 'past_due');

CREATE TABLE charges_v4 (
    id              INTEGER PRIMARY KEY,
    subscription_id INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE RESTRICT,
    period_index    INTEGER NOT NULL CHECK (period_index >= 0),
    period_start    INTEGER NOT NULL,
    merchant_uid    TEXT    NOT NULL UNIQUE
                            CHECK (length(merchant_uid) BETWEEN 1 AND 40 AND
                                   merchant_uid NOT GLOB '*[^A-Za-z0-9_-]*'),
    customer_uid    TEXT    NOT NULL CHECK (length(customer_uid) BETWEEN 1 AND 80),
    amount          INTEGER NOT NULL CHECK (amount > 0),
    currency        TEXT    NOT NULL,
    order_name      TEXT    NOT NULL,
    -- Rows are created `sending` (written ahead with their first request) or `parked`;
    -- `scheduled` remains for rows of earlier versions.
    state           TEXT    NOT NULL DEFAULT 'scheduled'
                            CHECK (state = 'scheduled' OR state = 'sending' OR state = 'paid' OR
                                   state = 'declined' OR state = 'unknown' OR
                                   state = 'reconciling' OR state = 'retry_wait' OR
                                   state = 'parked' OR state = 'skipped' OR state = 'canceled'),
    attempt_count   INTEGER NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),  -- charge requests
    decline_count   INTEGER NOT NULL DEFAULT 0 CHECK (decline_count >= 0),
    transient_count INTEGER NOT NULL DEFAULT 0 CHECK (transient_count >= 0),
    lookup_count    INTEGER NOT NULL DEFAULT 0 CHECK (lookup_count >= 0),
    first_declined_at INTEGER,
    unknown_since   INTEGER,
    -- When billingd acts on this row next; NULL while a request is on the wire or when final.
    next_action_at  INTEGER,
    imp_uid         TEXT,
    paid_at         INTEGER,
    fail_reason     TEXT,
    park_reason     TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    refusal_count   INTEGER NOT NULL DEFAULT 0 CHECK (refusal_count >= 0),
    last_refusal    TEXT,
    UNIQUE (subscription_id, period_index)
) STRICT;

INSERT INTO charges_v4
SELECT id, subscription_id, period_index, period_start, merchant_uid, customer_uid, amount,
       currency, order_name, state, attempt_count, decline_count, transient_count,
       lookup_count, first_declined_at, unknown_since, next_action_at, imp_uid, paid_at,
       fail_reason, park_reason, created_at, updated_at, refusal_count, last_refusal
  FROM charges;

DROP TABLE charges;
ALTER TABLE charges_v4 RENAME TO charges;

CREATE INDEX charges_next_action ON charges (next_action_at) WHERE next_action_at IS NOT NULL;
CREATE INDEX charges_by_state ON charges (state)
    WHERE state = 'sending' OR state = 'unknown' OR state = 'reconciling' OR state = 'parked';

-- A paid charge stays paid, and what was asked for does not change once it may have been sent.
CREATE TRIGGER charges_paid_is_final BEFORE UPDATE OF state ON charges
    WHEN OLD.state = 'paid' AND NEW.state IS NOT 'paid'
BEGIN
    SELECT RAISE(ABORT, 'charges: a paid charge cannot change state');
END;
CREATE TRIGGER charges_request_is_fixed
    BEFORE UPDATE OF merchant_uid, amount, customer_uid, currency, subscription_id, period_index
    ON charges
BEGIN
    SELECT RAISE(ABORT, 'charges: merchant_uid, amount, customer and period are fixed');
END;

-- Append-only journal of every request to PortOne and every answer (see version 1). A paid
-- charge answer that matches its request keeps no raw_answer: its columns say everything.
CREATE TABLE attempts_v4 (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    charge_id       INTEGER REFERENCES charges (id),
    request_id      INTEGER REFERENCES attempts (id),
    kind            TEXT    NOT NULL CHECK (kind = 'charge' OR kind = 'lookup' OR
                                            kind = 'customer' OR kind = 'token'),
    phase           TEXT    NOT NULL CHECK (phase IN ('request', 'answer')),
    merchant_uid    TEXT,
    attempt_number  INTEGER,
    amount          INTEGER,
    request_summary TEXT,
    request_written INTEGER CHECK (request_written IS NULL OR request_written IN (0, 1)),
    http_status     INTEGER,
    portone_code    INTEGER,
    message         TEXT,
    outcome         TEXT,
    imp_uid         TEXT,
    latency_ms      INTEGER,
    raw_answer      TEXT    CHECK (raw_answer IS NULL OR length(CAST(raw_answer AS BLOB)) <= 4096)
) STRICT;

INSERT INTO attempts_v4
SELECT id, at, charge_id, request_id, kind, phase, merchant_uid, attempt_number, amount,
       request_summary, request_written, http_status, portone_code, message, outcome, imp_uid,
       latency_ms, raw_answer
  FROM attempts;

DROP TABLE attempts;
ALTER TABLE attempts_v4 RENAME TO attempts;

CREATE INDEX attempts_by_charge ON attempts (charge_id, id);
CREATE INDEX attempts_by_request ON attempts (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX attempts_charge_requests ON attempts (at) WHERE kind = 'charge' AND phase = 'request';

CREATE TRIGGER attempts_no_update BEFORE UPDATE ON attempts
BEGIN
    SELECT RAISE(ABORT, 'attempts is append-only');
END;
CREATE TRIGGER attempts_no_delete BEFORE DELETE ON attempts
BEGIN
    SELECT RAISE(ABORT, 'attempts is append-only');
END;

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

CREATE VIEW in_doubt AS
SELECT c.id AS charge_id, c.subscription_id, c.merchant_uid, c.customer_uid, c.amount,
       c.currency, c.state, c.attempt_count, c.lookup_count,
       datetime(c.unknown_since, 'unixepoch', 'localtime') AS unknown_since_local,
       datetime(c.next_action_at, 'unixepoch', 'localtime') AS next_lookup_local
  FROM charges c
 WHERE c.state IN ('sending', 'unknown', 'reconciling');

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

CREATE VIEW recent_attempts AS
SELECT q.id AS attempt_id, datetime(q.at, 'unixepoch', 'localtime') AS at_local, q.kind,
       q.charge_id, q.merchant_uid, q.attempt_number, q.amount,
       a.outcome, a.http_status, a.portone_code, a.message, a.imp_uid, a.latency_ms
  FROM attempts q
  LEFT JOIN attempts a ON a.request_id = q.id
 WHERE q.phase = 'request'
 ORDER BY q.id DESC
 LIMIT 200;

CREATE VIEW revenue_per_day AS
SELECT date(c.paid_at, 'unixepoch', 'localtime') AS day_local, c.currency,
       count(*) AS charges, sum(c.amount) AS amount
  FROM charges c
 WHERE c.state = 'paid'
 GROUP BY 1, 2
 ORDER BY 1 DESC;

PRAGMA legacy_alter_table = OFF;
PRAGMA ignore_check_constraints = OFF;
