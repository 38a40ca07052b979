-- Every identity write names the version it read: a write based on an older version is refused
-- (compare-and-set), so a slow self-service submit cannot undo an administrator's change.
ALTER TABLE identities ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
