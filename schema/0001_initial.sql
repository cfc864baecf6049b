-- billingd data contract, version 1.
-- Instants are INTEGER UNIX seconds (UTC); money is INTEGER in the currency's minor unit
-- (KRW has none). Rows in `attempts` and `events` are append-only: results are never
-- overwritten, only superseded by later rows.

CREATE TABLE subscriptions (
    id                   INTEGER PRIMARY KEY,
    customer_uid         TEXT    NOT NULL CHECK (length(customer_uid) BETWEEN 1 AND 80),
    amount               INTEGER NOT NULL CHECK (amount > 0),
    currency             TEXT    NOT NULL DEFAULT 'KRW'
                                 CHECK (length(currency) = 3 AND currency NOT GLOB '*[^A-Z]*'),
    order_name           TEXT    NOT NULL CHECK (length(order_name) BETWEEN 1 AND 40),
    interval_unit        TEXT    NOT NULL CHECK (interval_unit IN ('day', 'week', 'month', 'year')),
    interval_count       INTEGER NOT NULL DEFAULT 1 CHECK (interval_count BETWEEN 1 AND 1000),
    -- Local date of period 0 (the first charge) and local time of day of every charge.
    anchor_date          TEXT    NOT NULL CHECK (date(anchor_date, '+0 days') IS anchor_date),
    charge_time          TEXT    NOT NULL DEFAULT '10:00'
                                 CHECK (length(charge_time) = 5 AND
                                        time(charge_time || ':00') IS charge_time || ':00'),
    time_zone            TEXT    NOT NULL DEFAULT 'Asia/Seoul'
                                 CHECK (length(time_zone) BETWEEN 1 AND 64),
    status               TEXT    NOT NULL DEFAULT 'active'
                                 CHECK (status IN ('trialing', 'active', 'past_due', 'unpaid',
                                                   'paused', 'canceled', 'ended')),
    trial_end_at         INTEGER,
    cancel_at_period_end INTEGER NOT NULL DEFAULT 0 CHECK (cancel_at_period_end IN (0, 1)),
    -- Charge at most this many periods, then the subscription is `ended`. NULL: no end.
    max_periods          INTEGER CHECK (max_periods IS NULL OR max_periods >= 1),
    buyer_name           TEXT    CHECK (buyer_name IS NULL OR length(buyer_name) <= 100),
    buyer_email          TEXT    CHECK (buyer_email IS NULL OR length(buyer_email) <= 200),
    buyer_tel            TEXT    CHECK (buyer_tel IS NULL OR length(buyer_tel) <= 40),
    -- Scheduling state, owned by billingd: the next period to charge and when it is due.
    -- NULL next_due_at: not scheduled yet (a new row) or a charge for next_period is open.
    next_period          INTEGER NOT NULL DEFAULT 0 CHECK (next_period >= 0),
    next_due_at          INTEGER,
    -- Set by billingd when a hand-written row cannot be scheduled (e.g. unknown time zone);
    -- such a row is left alone until an operator fixes it and clears this column.
    needs_attention      TEXT,
    created_at           INTEGER NOT NULL DEFAULT (unixepoch()),
    updated_at           INTEGER NOT NULL DEFAULT (unixepoch())
) STRICT;

-- The due query: an index search over billable rows only, in due order.
CREATE INDEX subscriptions_due ON subscriptions (next_due_at)
    WHERE next_due_at IS NOT NULL AND needs_attention IS NULL
      AND status IN ('trialing', 'active', 'past_due');
-- Rows billingd has not scheduled yet (inserted by hand or by billingctl).
CREATE INDEX subscriptions_unscheduled ON subscriptions (id)
    WHERE next_due_at IS NULL AND needs_attention IS NULL
      AND status IN ('trialing', 'active', 'past_due');

-- One row per subscription per billing period. UNIQUE(subscription_id, period_index) is the
-- database's half of "at most one successful charge per period"; merchant_uid is derived
-- from the pair and is what PortOne deduplicates on.
CREATE TABLE charges (
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
    state           TEXT    NOT NULL DEFAULT 'scheduled'
                            CHECK (state IN ('scheduled', 'sending', 'paid', 'declined',
                                             'unknown', 'reconciling', 'retry_wait', 'parked',
                                             'skipped', 'canceled')),
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
    UNIQUE (subscription_id, period_index)
) STRICT;

CREATE INDEX charges_next_action ON charges (next_action_at) WHERE next_action_at IS NOT NULL;
CREATE INDEX charges_by_state ON charges (state)
    WHERE state IN ('sending', 'unknown', 'reconciling', 'parked');

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

-- Append-only journal of every request to PortOne and every answer. A charge request row
-- (phase 'request') is committed before the request leaves the process; its answer row
-- (phase 'answer', request_id pointing at it) follows. Rows are never updated or deleted.
CREATE TABLE attempts (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    charge_id       INTEGER REFERENCES charges (id),
    request_id      INTEGER REFERENCES attempts (id),
    kind            TEXT    NOT NULL CHECK (kind IN ('charge', 'lookup', 'customer', 'token')),
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
CREATE INDEX attempts_by_charge ON attempts (charge_id, id);
CREATE INDEX attempts_by_request ON attempts (request_id) WHERE request_id IS NOT NULL;

CREATE TRIGGER attempts_no_update BEFORE UPDATE ON attempts
BEGIN
    SELECT RAISE(ABORT, 'attempts is append-only');
END;
CREATE TRIGGER attempts_no_delete BEFORE DELETE ON attempts
BEGIN
    SELECT RAISE(ABORT, 'attempts is append-only');
END;

-- Append-only audit of every state change, by billingd or by an operator.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    subscription_id INTEGER REFERENCES subscriptions (id),
    charge_id       INTEGER REFERENCES charges (id),
    kind            TEXT    NOT NULL,
    from_state      TEXT,
    to_state        TEXT,
    detail          TEXT,
    actor           TEXT    NOT NULL DEFAULT 'billingd'
) STRICT;
CREATE INDEX events_by_subscription ON events (subscription_id, id);
CREATE INDEX events_by_charge ON events (charge_id, id);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events is append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events is append-only');
END;

-- Views for the sqlite3 CLI. Local times use the sqlite3 process's time zone
-- (run `TZ=Asia/Seoul sqlite3 ...` to read them in the merchant's zone).

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
