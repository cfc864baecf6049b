-- billingd data contract: views operators need, fast, in the merchant's time zone.
--
-- SQLite has no time zone database, so local dates and times come from two small tables that
-- billingd rewrites at start from the OS tz database for `[billing] reporting_time_zone`
-- (default: the `time_zone` of [billing], Asia/Seoul): the zone's UTC offset intervals and
-- its local days (2000-01-01 .. 2099-12-31) as UTC ranges. Until billingd first writes them
-- they hold Asia/Seoul as a fixed +09:00 (Korea has kept +09:00 since 1988). Every view
-- reads local times through them, never through the sqlite3 process's zone.
--
-- Speed (README "Views"): every view answers in <= 50 ms at 1 M subscriptions and 3 M
-- charges. Per charge, this migration adds one b-tree insert (charges_paid, when a charge
-- becomes paid) and evaluates three partial-index conditions that are false on the paid path
-- (no b-tree write); it adds no trigger on charges, attempts or events. The in_doubt and
-- parked views use the existing charges_by_state index by repeating its condition.

CREATE TABLE reporting_zone (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    name       TEXT    NOT NULL,
    written_at INTEGER NOT NULL
) STRICT;
INSERT INTO reporting_zone VALUES (1, 'Asia/Seoul', unixepoch());

-- One row per UTC offset interval of the reporting zone: local = utc + utc_offset for
-- valid_from <= utc < valid_until. The intervals cover all of time without gaps.
CREATE TABLE reporting_offsets (
    valid_from  INTEGER PRIMARY KEY,
    valid_until INTEGER NOT NULL,
    utc_offset  INTEGER NOT NULL CHECK (utc_offset BETWEEN -86400 AND 86400),
    CHECK (valid_until > valid_from)
) STRICT;
INSERT INTO reporting_offsets VALUES (-9223372036854775807, 9223372036854775807, 32400);

-- One row per local day of the reporting zone: [starts_at, ends_at) in UTC.
CREATE TABLE reporting_days (
    day       TEXT    PRIMARY KEY CHECK (date(day, '+0 days') IS day),
    starts_at INTEGER NOT NULL UNIQUE,
    ends_at   INTEGER NOT NULL,
    CHECK (ends_at > starts_at)
) STRICT, WITHOUT ROWID;
WITH RECURSIVE d(day) AS (
    SELECT '2000-01-01' UNION ALL SELECT date(day, '+1 day') FROM d WHERE day < '2099-12-31')
INSERT INTO reporting_days
SELECT day, unixepoch(day) - 32400, unixepoch(day, '+1 day') - 32400 FROM d;

-- Paid revenue per local day up to `rolled_until` (a local midnight, UTC), kept by billingd
-- after its passes (lib/reporting); the views add the days after it from charges_paid.
CREATE TABLE revenue_daily (
    day      TEXT    NOT NULL,
    currency TEXT    NOT NULL,
    charges  INTEGER NOT NULL,
    amount   INTEGER NOT NULL,
    PRIMARY KEY (day, currency)
) STRICT, WITHOUT ROWID;
CREATE TABLE reporting_state (
    singleton    INTEGER PRIMARY KEY CHECK (singleton = 1),
    rolled_until INTEGER,          -- NULL: nothing rolled up yet, the views read charges_paid
    refreshed_at INTEGER
) STRICT;
INSERT INTO reporting_state VALUES (1, NULL, NULL);

-- Paid charges by payment time (covering): revenue of the days not yet rolled up and the
-- roll-up itself. One b-tree insert per paid charge, none for any other state.
CREATE INDEX charges_paid ON charges (paid_at, currency, amount) WHERE state = 'paid';
-- Declines by time with their reason (covering), for decline_reasons_30d: written only for
-- a declined charge's event.
CREATE INDEX events_declined ON events (at, detail) WHERE to_state = 'declined';
-- The due index of schema 1 with the amount beside the due time, so that coming_next_24h
-- reads the index alone. The same rows and the same b-tree writes per charge as before
-- (set_schedule moves next_due_at either way); the entry is one integer longer.
DROP INDEX subscriptions_due;
CREATE INDEX subscriptions_due ON subscriptions (next_due_at, amount)
    WHERE next_due_at IS NOT NULL AND needs_attention IS NULL
      AND (status = 'trialing' OR status = 'active' OR status = 'past_due');
-- Rows an operator must fix (parked view, billingctl, metrics): no write unless set.
CREATE INDEX subscriptions_needing_attention ON subscriptions (id)
    WHERE needs_attention IS NOT NULL;
-- One customer's history by customer_uid (subscriptions only: nothing on the charge path).
CREATE INDEX subscriptions_by_customer ON subscriptions (customer_uid);

-- Subscriptions and their amounts per status and interval, kept by triggers on inserts,
-- deletes and changes of status, amount, currency or interval. The charge path changes none
-- of those columns on a paid charge (a decline moves the status to past_due once), so these
-- triggers never fire there. MRR and counts by status read this instead of 1 M rows.
-- Not STRICT: a row written with the checks bypassed (a huge amount) makes the sum REAL
-- instead of failing the insert.
CREATE TABLE subscription_totals (
    status         TEXT    NOT NULL,
    currency       TEXT    NOT NULL,
    interval_unit  TEXT    NOT NULL,
    interval_count INTEGER NOT NULL,
    subscriptions  INTEGER NOT NULL,
    amount         INTEGER NOT NULL,
    PRIMARY KEY (status, currency, interval_unit, interval_count)
) WITHOUT ROWID;
INSERT INTO subscription_totals
SELECT status, currency, interval_unit, interval_count, count(*), sum(amount)
  FROM subscriptions GROUP BY 1, 2, 3, 4;

-- Status changes per local month of the reporting zone, kept by the same triggers: new
-- subscriptions, cancellations, dunning exhausted (unpaid), ended after max_periods, and
-- reactivations (unpaid or canceled back to active). Rows from before this migration are
-- estimated from created_at and, for subscriptions that are canceled/unpaid/ended now, from
-- updated_at.
CREATE TABLE subscription_changes_monthly (
    month       TEXT    PRIMARY KEY,
    started     INTEGER NOT NULL DEFAULT 0,
    canceled    INTEGER NOT NULL DEFAULT 0,
    unpaid      INTEGER NOT NULL DEFAULT 0,
    ended       INTEGER NOT NULL DEFAULT 0,
    reactivated INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
INSERT INTO subscription_changes_monthly (month, started)
SELECT strftime('%Y-%m', created_at + 32400, 'unixepoch'), count(*) FROM subscriptions GROUP BY 1;
INSERT INTO subscription_changes_monthly (month, canceled, unpaid, ended)
SELECT strftime('%Y-%m', updated_at + 32400, 'unixepoch'),
       count(*) FILTER (WHERE status = 'canceled'), count(*) FILTER (WHERE status = 'unpaid'),
       count(*) FILTER (WHERE status = 'ended')
  FROM subscriptions WHERE status IN ('canceled', 'unpaid', 'ended') GROUP BY 1
    ON CONFLICT (month) DO UPDATE SET canceled = excluded.canceled, unpaid = excluded.unpaid,
                                      ended = excluded.ended;

CREATE TRIGGER subscription_totals_insert AFTER INSERT ON subscriptions
BEGIN
    INSERT INTO subscription_totals VALUES
        (NEW.status, NEW.currency, NEW.interval_unit, NEW.interval_count, 1, NEW.amount)
        ON CONFLICT DO UPDATE SET subscriptions = subscriptions + 1,
                                  amount = amount + excluded.amount;
    INSERT INTO subscription_changes_monthly (month, started) VALUES
        (strftime('%Y-%m', NEW.created_at +
                  (SELECT utc_offset FROM reporting_offsets WHERE valid_from <= NEW.created_at
                    ORDER BY valid_from DESC LIMIT 1), 'unixepoch'), 1)
        ON CONFLICT DO UPDATE SET started = started + 1;
END;
CREATE TRIGGER subscription_totals_delete AFTER DELETE ON subscriptions
BEGIN
    UPDATE subscription_totals SET subscriptions = subscriptions - 1, amount = amount - OLD.amount
     WHERE status = OLD.status AND currency = OLD.currency
       AND interval_unit = OLD.interval_unit AND interval_count = OLD.interval_count;
END;
CREATE TRIGGER subscription_totals_update
    AFTER UPDATE OF status, amount, currency, interval_unit, interval_count ON subscriptions
    WHEN NEW.status IS NOT OLD.status OR NEW.amount IS NOT OLD.amount
      OR NEW.currency IS NOT OLD.currency OR NEW.interval_unit IS NOT OLD.interval_unit
      OR NEW.interval_count IS NOT OLD.interval_count
BEGIN
    UPDATE subscription_totals SET subscriptions = subscriptions - 1, amount = amount - OLD.amount
     WHERE status = OLD.status AND currency = OLD.currency
       AND interval_unit = OLD.interval_unit AND interval_count = OLD.interval_count;
    INSERT INTO subscription_totals VALUES
        (NEW.status, NEW.currency, NEW.interval_unit, NEW.interval_count, 1, NEW.amount)
        ON CONFLICT DO UPDATE SET subscriptions = subscriptions + 1,
                                  amount = amount + excluded.amount;
END;
CREATE TRIGGER subscription_changes_status AFTER UPDATE OF status ON subscriptions
    WHEN NEW.status IS NOT OLD.status
     AND (NEW.status IN ('canceled', 'unpaid', 'ended') OR
          (NEW.status = 'active' AND OLD.status IN ('canceled', 'unpaid')))
BEGIN
    INSERT INTO subscription_changes_monthly (month, canceled, unpaid, ended, reactivated)
    SELECT m, NEW.status = 'canceled', NEW.status = 'unpaid', NEW.status = 'ended',
           NEW.status = 'active'
      FROM (SELECT strftime('%Y-%m', t + (SELECT utc_offset FROM reporting_offsets
                                           WHERE valid_from <= t
                                           ORDER BY valid_from DESC LIMIT 1), 'unixepoch') AS m
              FROM (SELECT CASE WHEN NEW.updated_at > OLD.updated_at THEN NEW.updated_at
                                ELSE unixepoch() END AS t))
     WHERE true
        ON CONFLICT DO UPDATE SET canceled = canceled + excluded.canceled,
                                  unpaid = unpaid + excluded.unpaid,
                                  ended = ended + excluded.ended,
                                  reactivated = reactivated + excluded.reactivated;
END;

-- Amounts are bounded where rows come in: at most 100,000,000,000 (KRW) per charge, the
-- bound billingctl enforces too (its default per-charge limit is lower: [guardrails]
-- max_amount_per_charge, else 100,000,000). A CHECK would need the table rebuilt; a trigger
-- on INSERT does the same for new rows (billingd flags an existing row out of range).
CREATE TRIGGER subscriptions_amount_bounded BEFORE INSERT ON subscriptions
    WHEN NEW.amount > 100000000000
BEGIN
    SELECT RAISE(ABORT, 'subscriptions: amount must be at most 100000000000');
END;

-- --- views -----------------------------------------------------------------------------
-- Local times are in the reporting zone (reporting_zone.name), e.g. "2026-12-01 10:00:00".

DROP VIEW due_now;
DROP VIEW in_doubt;
DROP VIEW parked;
DROP VIEW recent_attempts;
DROP VIEW revenue_per_day;

CREATE VIEW due_now AS
SELECT 'subscription' AS what, s.id AS subscription_id, NULL AS charge_id,
       s.customer_uid, s.amount, s.currency, 'period ' || s.next_period AS detail,
       datetime(s.next_due_at + (SELECT utc_offset FROM reporting_offsets
                                  WHERE valid_from <= s.next_due_at
                                  ORDER BY valid_from DESC LIMIT 1), 'unixepoch') AS due_local
  FROM subscriptions s
 WHERE s.next_due_at IS NOT NULL AND s.next_due_at <= unixepoch()
   AND s.needs_attention IS NULL AND (s.status = 'trialing' OR s.status = 'active' OR s.status = 'past_due')
UNION ALL
SELECT 'charge', c.subscription_id, c.id, c.customer_uid, c.amount, c.currency,
       c.state || ' ' || c.merchant_uid,
       datetime(c.next_action_at + (SELECT utc_offset FROM reporting_offsets
                                     WHERE valid_from <= c.next_action_at
                                     ORDER BY valid_from DESC LIMIT 1), 'unixepoch')
  FROM charges c
 WHERE c.next_action_at IS NOT NULL AND c.next_action_at <= unixepoch();

-- The condition repeats charges_by_state's (schema 4) so that the index is used.
CREATE VIEW in_doubt AS
SELECT c.id AS charge_id, c.subscription_id, c.merchant_uid, c.customer_uid, c.amount,
       c.currency, c.state, c.attempt_count, c.lookup_count,
       datetime(c.unknown_since + (SELECT utc_offset FROM reporting_offsets
                                    WHERE valid_from <= c.unknown_since
                                    ORDER BY valid_from DESC LIMIT 1), 'unixepoch')
           AS unknown_since_local,
       datetime(c.next_action_at + (SELECT utc_offset FROM reporting_offsets
                                     WHERE valid_from <= c.next_action_at
                                     ORDER BY valid_from DESC LIMIT 1), 'unixepoch')
           AS next_lookup_local
  FROM charges c
 WHERE (c.state = 'sending' OR c.state = 'unknown' OR c.state = 'reconciling' OR
        c.state = 'parked') AND c.state <> 'parked';

CREATE VIEW parked AS
SELECT 'charge' AS what, c.id AS charge_id, c.subscription_id, c.merchant_uid, c.customer_uid,
       c.amount, c.currency, c.park_reason AS reason,
       datetime(c.updated_at + (SELECT utc_offset FROM reporting_offsets
                                 WHERE valid_from <= c.updated_at
                                 ORDER BY valid_from DESC LIMIT 1), 'unixepoch') AS since_local
  FROM charges c
 WHERE (c.state = 'sending' OR c.state = 'unknown' OR c.state = 'reconciling' OR
        c.state = 'parked') AND c.state = 'parked'
UNION ALL
SELECT 'subscription', NULL, s.id, NULL, s.customer_uid, s.amount, s.currency,
       s.needs_attention,
       datetime(s.updated_at + (SELECT utc_offset FROM reporting_offsets
                                 WHERE valid_from <= s.updated_at
                                 ORDER BY valid_from DESC LIMIT 1), 'unixepoch')
  FROM subscriptions s
 WHERE s.needs_attention IS NOT NULL;

CREATE VIEW recent_attempts AS
SELECT q.id AS attempt_id,
       datetime(q.at + (SELECT utc_offset FROM reporting_offsets WHERE valid_from <= q.at
                         ORDER BY valid_from DESC LIMIT 1), 'unixepoch') AS at_local,
       q.kind, q.charge_id, q.merchant_uid, q.attempt_number, q.amount,
       a.outcome, a.http_status, a.portone_code, a.message, a.imp_uid, a.latency_ms
  FROM attempts q
  LEFT JOIN attempts a ON a.request_id = q.id
 WHERE q.phase = 'request'
 ORDER BY q.id DESC
 LIMIT 200;

-- Paid charges per local day, newest first: the roll-up, plus the days after it counted
-- from charges_paid (at most a few days: billingd rolls up after its passes).
CREATE VIEW revenue_per_day AS
SELECT day AS day_local, currency, sum(charges) AS charges, sum(amount) AS amount
  FROM (SELECT day, currency, charges, amount FROM revenue_daily
         WHERE day < coalesce((SELECT d.day FROM reporting_days d, reporting_state r
                                WHERE d.starts_at = r.rolled_until), '0000')
        UNION ALL
        SELECT d.day, c.currency, count(*), sum(c.amount)
          FROM reporting_days d
          JOIN charges c INDEXED BY charges_paid
            ON c.state = 'paid' AND c.paid_at >= d.starts_at AND c.paid_at < d.ends_at
         WHERE d.starts_at >= coalesce((SELECT rolled_until FROM reporting_state), 0)
           AND d.ends_at > (SELECT min(paid_at) FROM charges WHERE state = 'paid')
           AND d.starts_at <= (SELECT max(paid_at) FROM charges WHERE state = 'paid')
         GROUP BY d.day, c.currency)
 GROUP BY day, currency
 ORDER BY day DESC, currency;

CREATE VIEW revenue_per_month AS
SELECT substr(day_local, 1, 7) AS month_local, currency, sum(charges) AS charges,
       sum(amount) AS amount
  FROM revenue_per_day
 GROUP BY 1, 2
 ORDER BY 1 DESC, 2;

-- Monthly recurring revenue of the subscriptions that are charged (trialing excluded):
-- a year is 12 months, a week 52/12 of a month, a day 365/12. Rounded to whole units.
CREATE VIEW mrr AS
SELECT currency, sum(subscriptions) AS subscriptions,
       CAST(round(sum(amount * CASE interval_unit WHEN 'month' THEN 1.0
                                                  WHEN 'year' THEN 1.0 / 12
                                                  WHEN 'week' THEN 52.0 / 12
                                                  WHEN 'day' THEN 365.0 / 12 END
                      / interval_count)) AS INTEGER) AS mrr
  FROM subscription_totals
 WHERE status IN ('active', 'past_due') AND subscriptions > 0
 GROUP BY currency;

CREATE VIEW subscriptions_by_status AS
SELECT status, sum(subscriptions) AS subscriptions FROM subscription_totals
 GROUP BY status HAVING sum(subscriptions) > 0 ORDER BY status;

-- Why cards were declined in the last 30 days (the reason PortOne gave), most frequent first.
CREATE VIEW decline_reasons_30d AS
SELECT reason, declines,
       datetime(last_at + (SELECT utc_offset FROM reporting_offsets WHERE valid_from <= last_at
                            ORDER BY valid_from DESC LIMIT 1), 'unixepoch') AS last_local
  FROM (SELECT coalesce(e.detail, '(no reason given)') AS reason, count(*) AS declines,
               max(e.at) AS last_at
          FROM events e
         WHERE e.to_state = 'declined' AND e.at >= unixepoch() - 30 * 86400
         GROUP BY e.detail)
 ORDER BY declines DESC, reason;

-- What billingd will do in the next 24 hours, by local hour of the reporting zone: periods
-- that start (with their amount) and actions on existing charges (dunning retries, resends,
-- lookups). Both read their index alone (subscriptions_due, charges_next_action).
CREATE VIEW coming_next_24h AS
SELECT strftime('%Y-%m-%d %H:00', t + (SELECT utc_offset FROM reporting_offsets
                                        WHERE valid_from <= t
                                        ORDER BY valid_from DESC LIMIT 1), 'unixepoch')
           AS hour_local,
       sum(periods) AS new_periods, sum(amount) AS new_period_amount,
       sum(actions) AS charge_actions
  FROM (SELECT (s.next_due_at / 3600) * 3600 AS t, count(*) AS periods, sum(s.amount) AS amount,
               0 AS actions
          FROM subscriptions s
         WHERE s.next_due_at IS NOT NULL AND s.next_due_at > unixepoch()
           AND s.next_due_at <= unixepoch() + 86400
           AND s.needs_attention IS NULL AND (s.status = 'trialing' OR s.status = 'active' OR s.status = 'past_due')
         GROUP BY 1
        UNION ALL
        SELECT (c.next_action_at / 3600) * 3600, 0, 0, count(*)
          FROM charges c
         WHERE c.next_action_at IS NOT NULL AND c.next_action_at > unixepoch()
           AND c.next_action_at <= unixepoch() + 86400
         GROUP BY 1)
 GROUP BY t
 ORDER BY t;

-- One customer's history: `SELECT * FROM customer_history WHERE customer_uid = 'cust_0001'`
-- (subscriptions_by_customer, then each subscription's charges by period).
CREATE VIEW customer_history AS
SELECT s.customer_uid, s.id AS subscription_id, s.status AS subscription_status,
       c.id AS charge_id, c.period_index, c.state, c.amount, c.currency, c.merchant_uid,
       c.imp_uid,
       datetime(c.period_start + (SELECT utc_offset FROM reporting_offsets
                                   WHERE valid_from <= c.period_start
                                   ORDER BY valid_from DESC LIMIT 1), 'unixepoch')
           AS period_start_local,
       datetime(c.paid_at + (SELECT utc_offset FROM reporting_offsets WHERE valid_from <= c.paid_at
                              ORDER BY valid_from DESC LIMIT 1), 'unixepoch') AS paid_local,
       coalesce(c.park_reason, c.fail_reason) AS reason
  FROM subscriptions s
  JOIN charges c ON c.subscription_id = s.id
 ORDER BY s.id, c.period_index;

-- Subscriptions started and lost per local month, with the active count at the start of the
-- month and the churn rate (canceled + unpaid over active at the start).
CREATE VIEW churn_per_month AS
SELECT month AS month_local, started, canceled, unpaid, ended, reactivated,
       canceled + unpaid AS churned, active_at_start,
       CASE WHEN active_at_start > 0
            THEN round(100.0 * (canceled + unpaid) / active_at_start, 2) END AS churn_percent
  FROM (SELECT *, coalesce(sum(started - canceled - unpaid - ended + reactivated)
                               OVER (ORDER BY month ROWS BETWEEN UNBOUNDED PRECEDING
                                                         AND 1 PRECEDING), 0) AS active_at_start
          FROM subscription_changes_monthly)
 ORDER BY month DESC;
