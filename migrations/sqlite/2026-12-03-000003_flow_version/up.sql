-- A flow's writes carry a version: a write based on an older state never replaces a newer one
-- (an instance with a stale copy cannot undo a step another instance stored).
ALTER TABLE selfservice_login_flows ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE selfservice_registration_flows ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE selfservice_recovery_flows ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE selfservice_verification_flows ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE selfservice_settings_flows ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
