ALTER TABLE identities DROP COLUMN version;
