-- The whole tessera data model. Later migrations add columns, not tables.
-- SQLite mirror: uuids are text, timestamps are RFC 3339 text (UTC, fixed width,
-- so they sort), JSON is text.

CREATE TABLE identities (
    id                TEXT PRIMARY KEY,
    schema_id         text        NOT NULL,
    state             text        NOT NULL DEFAULT 'active',
    state_changed_at  TEXT NULL,
    traits            TEXT       NOT NULL,
    metadata_public   TEXT       NULL,
    metadata_admin    TEXT       NULL,
    external_id       text        NULL,
    organization_id   TEXT        NULL,
    available_aal     text        NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE UNIQUE INDEX identities_external_id_uq ON identities (external_id);
CREATE INDEX identities_organization_id_idx ON identities (organization_id, id);

CREATE TABLE identity_credentials (
    id           TEXT PRIMARY KEY,
    identity_id  TEXT        NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    type         text        NOT NULL,
    config       TEXT       NOT NULL,
    version      integer     NOT NULL DEFAULT 0,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX identity_credentials_identity_type_uq ON identity_credentials (identity_id, type);

CREATE TABLE identity_credential_identifiers (
    id                      TEXT PRIMARY KEY,
    identifier              text        NOT NULL,
    identity_credential_id  TEXT        NOT NULL REFERENCES identity_credentials (id) ON DELETE CASCADE,
    identity_id             TEXT        NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    type                    text        NOT NULL,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
);
CREATE UNIQUE INDEX identity_credential_identifiers_type_identifier_uq ON identity_credential_identifiers (type, identifier);
CREATE INDEX identity_credential_identifiers_identifier_idx ON identity_credential_identifiers (identifier);
CREATE INDEX identity_credential_identifiers_identity_idx ON identity_credential_identifiers (identity_id);

CREATE TABLE identity_verifiable_addresses (
    id           TEXT PRIMARY KEY,
    identity_id  TEXT        NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    via          text        NOT NULL,
    value        text        NOT NULL,
    verified     BOOLEAN     NOT NULL DEFAULT false,
    verified_at  TEXT NULL,
    status       text        NOT NULL DEFAULT 'pending',
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX identity_verifiable_addresses_via_value_uq ON identity_verifiable_addresses (via, value);
CREATE INDEX identity_verifiable_addresses_identity_idx ON identity_verifiable_addresses (identity_id);

CREATE TABLE identity_recovery_addresses (
    id           TEXT PRIMARY KEY,
    identity_id  TEXT        NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    via          text        NOT NULL,
    value        text        NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX identity_recovery_addresses_via_value_uq ON identity_recovery_addresses (via, value);
CREATE INDEX identity_recovery_addresses_identity_idx ON identity_recovery_addresses (identity_id);

CREATE TABLE sessions (
    id                      TEXT PRIMARY KEY,
    identity_id             TEXT        NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    token_hash              text        NOT NULL,
    logout_token_hash       text        NOT NULL,
    active                  BOOLEAN     NOT NULL DEFAULT true,
    aal                     text        NOT NULL DEFAULT 'aal1',
    authentication_methods  TEXT       NOT NULL,
    authenticated_at        TEXT NOT NULL,
    issued_at               TEXT NOT NULL,
    expires_at              TEXT NOT NULL,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
);
CREATE UNIQUE INDEX sessions_token_hash_uq ON sessions (token_hash);
CREATE UNIQUE INDEX sessions_logout_token_hash_uq ON sessions (logout_token_hash);
CREATE INDEX sessions_identity_idx ON sessions (identity_id, created_at);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE session_devices (
    id          TEXT PRIMARY KEY,
    session_id  TEXT        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    ip_address  text        NULL,
    user_agent  text        NULL,
    location    text        NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX session_devices_session_idx ON session_devices (session_id);

CREATE TABLE session_token_exchanges (
    id                   TEXT PRIMARY KEY,
    flow_id              TEXT        NOT NULL,
    session_id           TEXT        NULL REFERENCES sessions (id) ON DELETE CASCADE,
    init_code_hash       text        NOT NULL,
    return_to_code_hash  text        NOT NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX session_token_exchanges_flow_idx ON session_token_exchanges (flow_id);
CREATE INDEX session_token_exchanges_codes_idx ON session_token_exchanges (init_code_hash, return_to_code_hash);

-- The five self-service flow kinds share one shape: common columns plus a
-- kind-specific `data` document, so new flow fields need no migration.
CREATE TABLE selfservice_login_flows (
    id                 TEXT PRIMARY KEY,
    type               text        NOT NULL,
    state              text        NOT NULL,
    request_url        text        NOT NULL,
    return_to          text        NULL,
    active_method      text        NULL,
    ui                 TEXT       NOT NULL,
    csrf_token         text        NOT NULL,
    identity_id        TEXT        NULL REFERENCES identities (id) ON DELETE CASCADE,
    session_id         TEXT        NULL REFERENCES sessions (id) ON DELETE CASCADE,
    data               TEXT       NOT NULL,
    issued_at          TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX selfservice_login_flows_expires_at_idx ON selfservice_login_flows (expires_at);

CREATE TABLE selfservice_registration_flows (
    id                 TEXT PRIMARY KEY,
    type               text        NOT NULL,
    state              text        NOT NULL,
    request_url        text        NOT NULL,
    return_to          text        NULL,
    active_method      text        NULL,
    ui                 TEXT       NOT NULL,
    csrf_token         text        NOT NULL,
    identity_id        TEXT        NULL,
    session_id         TEXT        NULL,
    data               TEXT       NOT NULL,
    issued_at          TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX selfservice_registration_flows_expires_at_idx ON selfservice_registration_flows (expires_at);

CREATE TABLE selfservice_settings_flows (
    id                 TEXT PRIMARY KEY,
    type               text        NOT NULL,
    state              text        NOT NULL,
    request_url        text        NOT NULL,
    return_to          text        NULL,
    active_method      text        NULL,
    ui                 TEXT       NOT NULL,
    csrf_token         text        NOT NULL,
    identity_id        TEXT        NULL REFERENCES identities (id) ON DELETE CASCADE,
    session_id         TEXT        NULL,
    data               TEXT       NOT NULL,
    issued_at          TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX selfservice_settings_flows_expires_at_idx ON selfservice_settings_flows (expires_at);

CREATE TABLE selfservice_recovery_flows (
    id                 TEXT PRIMARY KEY,
    type               text        NOT NULL,
    state              text        NOT NULL,
    request_url        text        NOT NULL,
    return_to          text        NULL,
    active_method      text        NULL,
    ui                 TEXT       NOT NULL,
    csrf_token         text        NOT NULL,
    identity_id        TEXT        NULL REFERENCES identities (id) ON DELETE CASCADE,
    session_id         TEXT        NULL,
    data               TEXT       NOT NULL,
    issued_at          TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX selfservice_recovery_flows_expires_at_idx ON selfservice_recovery_flows (expires_at);

CREATE TABLE selfservice_verification_flows (
    id                 TEXT PRIMARY KEY,
    type               text        NOT NULL,
    state              text        NOT NULL,
    request_url        text        NOT NULL,
    return_to          text        NULL,
    active_method      text        NULL,
    ui                 TEXT       NOT NULL,
    csrf_token         text        NOT NULL,
    identity_id        TEXT        NULL REFERENCES identities (id) ON DELETE CASCADE,
    session_id         TEXT        NULL,
    data               TEXT       NOT NULL,
    issued_at          TEXT NOT NULL,
    expires_at         TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX selfservice_verification_flows_expires_at_idx ON selfservice_verification_flows (expires_at);

CREATE TABLE selfservice_errors (
    id          TEXT PRIMARY KEY,
    error       TEXT       NOT NULL,
    csrf_token  text        NOT NULL DEFAULT '',
    was_seen    BOOLEAN     NOT NULL DEFAULT false,
    seen_at     TEXT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX selfservice_errors_created_at_idx ON selfservice_errors (created_at);

CREATE TABLE continuity_containers (
    id           TEXT PRIMARY KEY,
    identity_id  TEXT        NULL REFERENCES identities (id) ON DELETE CASCADE,
    name         text        NOT NULL,
    payload      TEXT       NULL,
    expires_at   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX continuity_containers_expires_at_idx ON continuity_containers (expires_at);

-- One-time secrets (recovery/verification links and codes, login and
-- registration codes). Only SHA-256 hashes are stored.
CREATE TABLE identity_recovery_tokens (
    id                     TEXT PRIMARY KEY,
    token_hash             text        NOT NULL,
    token_type             smallint    NOT NULL DEFAULT 1,
    used                   BOOLEAN     NOT NULL DEFAULT false,
    used_at                TEXT NULL,
    identity_id            TEXT        NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    recovery_address_id    TEXT        NULL REFERENCES identity_recovery_addresses (id) ON DELETE CASCADE,
    flow_id                TEXT        NULL REFERENCES selfservice_recovery_flows (id) ON DELETE CASCADE,
    issued_at              TEXT NOT NULL,
    expires_at             TEXT NOT NULL,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);
CREATE UNIQUE INDEX identity_recovery_tokens_hash_uq ON identity_recovery_tokens (token_hash);

CREATE TABLE identity_recovery_codes (
    id                     TEXT PRIMARY KEY,
    code_hash              text        NOT NULL,
    code_type              smallint    NOT NULL DEFAULT 1,
    used_at                TEXT NULL,
    identity_id            TEXT        NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    recovery_address_id    TEXT        NULL REFERENCES identity_recovery_addresses (id) ON DELETE CASCADE,
    flow_id                TEXT        NOT NULL REFERENCES selfservice_recovery_flows (id) ON DELETE CASCADE,
    issued_at              TEXT NOT NULL,
    expires_at             TEXT NOT NULL,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);
CREATE INDEX identity_recovery_codes_flow_idx ON identity_recovery_codes (flow_id);

CREATE TABLE identity_verification_tokens (
    id                       TEXT PRIMARY KEY,
    token_hash               text        NOT NULL,
    used                     BOOLEAN     NOT NULL DEFAULT false,
    used_at                  TEXT NULL,
    verifiable_address_id    TEXT        NOT NULL REFERENCES identity_verifiable_addresses (id) ON DELETE CASCADE,
    flow_id                  TEXT        NOT NULL REFERENCES selfservice_verification_flows (id) ON DELETE CASCADE,
    issued_at                TEXT NOT NULL,
    expires_at               TEXT NOT NULL,
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL
);
CREATE UNIQUE INDEX identity_verification_tokens_hash_uq ON identity_verification_tokens (token_hash);

CREATE TABLE identity_verification_codes (
    id                       TEXT PRIMARY KEY,
    code_hash                text        NOT NULL,
    used_at                  TEXT NULL,
    verifiable_address_id    TEXT        NULL REFERENCES identity_verifiable_addresses (id) ON DELETE CASCADE,
    address_value            text        NOT NULL,
    address_via              text        NOT NULL,
    flow_id                  TEXT        NOT NULL REFERENCES selfservice_verification_flows (id) ON DELETE CASCADE,
    issued_at                TEXT NOT NULL,
    expires_at               TEXT NOT NULL,
    created_at               TEXT NOT NULL,
    updated_at               TEXT NOT NULL
);
CREATE INDEX identity_verification_codes_flow_idx ON identity_verification_codes (flow_id);

CREATE TABLE identity_login_codes (
    id             TEXT PRIMARY KEY,
    code_hash      text        NOT NULL,
    used_at        TEXT NULL,
    address        text        NOT NULL,
    address_type   text        NOT NULL,
    identity_id    TEXT        NULL REFERENCES identities (id) ON DELETE CASCADE,
    flow_id        TEXT        NOT NULL REFERENCES selfservice_login_flows (id) ON DELETE CASCADE,
    issued_at      TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX identity_login_codes_flow_idx ON identity_login_codes (flow_id);

CREATE TABLE identity_registration_codes (
    id             TEXT PRIMARY KEY,
    code_hash      text        NOT NULL,
    used_at        TEXT NULL,
    address        text        NOT NULL,
    address_type   text        NOT NULL,
    flow_id        TEXT        NOT NULL REFERENCES selfservice_registration_flows (id) ON DELETE CASCADE,
    issued_at      TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX identity_registration_codes_flow_idx ON identity_registration_codes (flow_id);

-- Courier: status 1 queued, 2 sent, 3 processing, 4 abandoned (Kratos' values).
CREATE TABLE courier_messages (
    id             TEXT PRIMARY KEY,
    type           smallint    NOT NULL,
    status         smallint    NOT NULL,
    channel        text        NULL,
    recipient      text        NOT NULL,
    subject        text        NOT NULL DEFAULT '',
    body           text        NOT NULL,
    template_type  text        NOT NULL DEFAULT '',
    template_data  TEXT       NULL,
    send_count     integer     NOT NULL DEFAULT 0,
    next_attempt_at TEXT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX courier_messages_status_created_idx ON courier_messages (status, created_at, id);
CREATE INDEX courier_messages_recipient_idx ON courier_messages (recipient, created_at);

CREATE TABLE courier_message_dispatches (
    id          TEXT PRIMARY KEY,
    message_id  TEXT        NOT NULL REFERENCES courier_messages (id) ON DELETE CASCADE,
    status      text        NOT NULL,
    error       TEXT       NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX courier_message_dispatches_message_idx ON courier_message_dispatches (message_id, created_at);

-- Brute-force defence: one row per bucket key (e.g. "id:<identifier>", "ip:<addr>").
CREATE TABLE brute_force_counters (
    key           text PRIMARY KEY,
    failures      integer     NOT NULL DEFAULT 0,
    window_start  TEXT NOT NULL,
    locked_until  TEXT NULL,
    updated_at    TEXT NOT NULL
);
