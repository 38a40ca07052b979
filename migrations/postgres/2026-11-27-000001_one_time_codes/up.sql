-- One table for the one-time secrets of recovery and verification (codes and link tokens).
-- Only an HMAC-SHA-256 digest (keyed with the first `secrets.default`, bound to the flow) is
-- stored. No foreign key to the flow tables: flows are written behind, codes durably.
DROP TABLE identity_recovery_tokens;
DROP TABLE identity_recovery_codes;
DROP TABLE identity_verification_tokens;
DROP TABLE identity_verification_codes;

CREATE TABLE selfservice_codes (
    id             uuid PRIMARY KEY,
    flow_id        uuid        NOT NULL,
    flow_kind      text        NOT NULL,
    method         text        NOT NULL,
    digest         text        NOT NULL,
    identity_id    uuid        NULL REFERENCES identities (id) ON DELETE CASCADE,
    address_value  text        NOT NULL,
    address_via    text        NOT NULL,
    by_admin       boolean     NOT NULL DEFAULT false,
    used_at        timestamptz NULL,
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL
);
CREATE INDEX selfservice_codes_flow_idx ON selfservice_codes (flow_id, digest);
CREATE INDEX selfservice_codes_expires_at_idx ON selfservice_codes (expires_at);
