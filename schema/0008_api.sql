-- billingd data contract: the HTTP API's idempotency keys.
--
-- A client that creates a subscription (POST /subscriptions) may send an Idempotency-Key
-- header and retry the request as often as it needs: the first request that succeeds stores
-- its answer here, in the same transaction as the subscription it created, and every later
-- request with the key gets that answer again if its body is the same (the fingerprint), or
-- 409 if it differs. Keys are global to the database (not per API token, so that a retry
-- after a token rotation cannot create a second subscription) and forgotten after
-- [api] idempotency_hours. billingd alone writes this table.
CREATE TABLE api_idempotency (
    idempotency_key TEXT    PRIMARY KEY CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    -- SHA-256 (hex) of the method, the path and the request's JSON body as parsed.
    fingerprint     TEXT    NOT NULL CHECK (length(fingerprint) = 64),
    status          INTEGER NOT NULL CHECK (status BETWEEN 200 AND 299),
    body            TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    subscription_id INTEGER REFERENCES subscriptions (id),
    created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX api_idempotency_by_age ON api_idempotency (created_at);
