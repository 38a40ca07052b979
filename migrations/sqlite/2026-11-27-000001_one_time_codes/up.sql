-- One table for the one-time secrets of recovery and verification (codes and link tokens).
-- Only an HMAC-SHA-256 digest (keyed with the first `secrets.default`, bound to the flow) is
-- stored. No foreign key to the flow tables: flows are written behind, codes durably.
DROP TABLE identity_recovery_tokens;
DROP TABLE identity_recovery_codes;
DROP TABLE identity_verification_tokens;
DROP TABLE identity_verification_codes;

CREATE TABLE selfservice_codes (
    id             TEXT PRIMARY KEY,
    flow_id        TEXT        NOT NULL,
    flow_kind      text        NOT NULL,
    method         text        NOT NULL,
    digest         text        NOT NULL,
    identity_id    TEXT        NULL REFERENCES identities (id) ON DELETE CASCADE,
    address_value  text        NOT NULL,
    address_via    text        NOT NULL,
    by_admin       BOOLEAN     NOT NULL DEFAULT false,
    used_at        TEXT NULL,
    expires_at     TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX selfservice_codes_flow_idx ON selfservice_codes (flow_id, digest);
CREATE INDEX selfservice_codes_expires_at_idx ON selfservice_codes (expires_at);
