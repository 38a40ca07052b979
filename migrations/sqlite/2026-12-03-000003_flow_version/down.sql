ALTER TABLE selfservice_login_flows DROP COLUMN version;
ALTER TABLE selfservice_registration_flows DROP COLUMN version;
ALTER TABLE selfservice_recovery_flows DROP COLUMN version;
ALTER TABLE selfservice_verification_flows DROP COLUMN version;
ALTER TABLE selfservice_settings_flows DROP COLUMN version;
