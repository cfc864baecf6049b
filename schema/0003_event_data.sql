-- billingd data contract, version 3: events carry what the merchant's application needs.
--
-- `data` is a JSON object written with the event in the same transaction as the change it
-- reports (e.g. amount, imp_uid and period dates of a paid charge; reason, attempt and next
-- retry time of a decline). It is the payload the outbox delivers, so it is fixed when the
-- event is written and never rebuilt from rows that may change later. NULL for events that
-- carry nothing beyond their columns.

ALTER TABLE events ADD COLUMN data TEXT
    CHECK (data IS NULL OR length(CAST(data AS BLOB)) <= 4096);
