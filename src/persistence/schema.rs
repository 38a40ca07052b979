//! Table definitions shared by both backends (see `types.rs` for the column types).
//! Only tables that have query code are declared; migrations hold the whole model.

diesel::table! {
    use diesel::sql_types::*;
    use crate::persistence::types::{DbJson, DbTimestamptz, DbUuid};

    identities (id) {
        id -> DbUuid,
        schema_id -> Text,
        state -> Text,
        state_changed_at -> Nullable<DbTimestamptz>,
        traits -> DbJson,
        metadata_public -> Nullable<DbJson>,
        metadata_admin -> Nullable<DbJson>,
        external_id -> Nullable<Text>,
        organization_id -> Nullable<DbUuid>,
        available_aal -> Nullable<Text>,
        created_at -> DbTimestamptz,
        updated_at -> DbTimestamptz,
        version -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::persistence::types::{DbJson, DbTimestamptz, DbUuid};

    identity_credentials (id) {
        id -> DbUuid,
        identity_id -> DbUuid,
        #[sql_name = "type"]
        kind -> Text,
        config -> DbJson,
        version -> Integer,
        created_at -> DbTimestamptz,
        updated_at -> DbTimestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::persistence::types::{DbTimestamptz, DbUuid};

    identity_credential_identifiers (id) {
        id -> DbUuid,
        identifier -> Text,
        identity_credential_id -> DbUuid,
        identity_id -> DbUuid,
        #[sql_name = "type"]
        kind -> Text,
        created_at -> DbTimestamptz,
        updated_at -> DbTimestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::persistence::types::{DbTimestamptz, DbUuid};

    identity_verifiable_addresses (id) {
        id -> DbUuid,
        identity_id -> DbUuid,
        via -> Text,
        value -> Text,
        verified -> Bool,
        verified_at -> Nullable<DbTimestamptz>,
        status -> Text,
        created_at -> DbTimestamptz,
        updated_at -> DbTimestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::persistence::types::{DbTimestamptz, DbUuid};

    identity_recovery_addresses (id) {
        id -> DbUuid,
        identity_id -> DbUuid,
        via -> Text,
        value -> Text,
        created_at -> DbTimestamptz,
        updated_at -> DbTimestamptz,
    }
}

diesel::joinable!(identity_credentials -> identities (identity_id));
diesel::joinable!(identity_credential_identifiers -> identity_credentials (identity_credential_id));
diesel::joinable!(identity_verifiable_addresses -> identities (identity_id));
diesel::joinable!(identity_recovery_addresses -> identities (identity_id));

diesel::allow_tables_to_appear_in_same_query!(
    identities,
    identity_credentials,
    identity_credential_identifiers,
    identity_verifiable_addresses,
    identity_recovery_addresses,
);

diesel::table! {
    use diesel::sql_types::*;
    use crate::persistence::types::{DbJson, DbTimestamptz, DbUuid};

    sessions (id) {
        id -> DbUuid,
        identity_id -> DbUuid,
        token_hash -> Text,
        logout_token_hash -> Text,
        active -> Bool,
        aal -> Text,
        authentication_methods -> DbJson,
        authenticated_at -> DbTimestamptz,
        issued_at -> DbTimestamptz,
        expires_at -> DbTimestamptz,
        created_at -> DbTimestamptz,
        updated_at -> DbTimestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::persistence::types::{DbTimestamptz, DbUuid};

    session_devices (id) {
        id -> DbUuid,
        session_id -> DbUuid,
        ip_address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        location -> Nullable<Text>,
        created_at -> DbTimestamptz,
        updated_at -> DbTimestamptz,
    }
}

diesel::joinable!(sessions -> identities (identity_id));
diesel::joinable!(session_devices -> sessions (session_id));
diesel::allow_tables_to_appear_in_same_query!(sessions, session_devices, identities);

/// Declares one self-service flow table (they all share one shape).
macro_rules! flow_table {
    ($name:ident) => {
        diesel::table! {
            use diesel::sql_types::*;
            use crate::persistence::types::{DbJson, DbTimestamptz, DbUuid};

            $name (id) {
                id -> DbUuid,
                #[sql_name = "type"]
                flow_type -> Text,
                state -> Text,
                request_url -> Text,
                return_to -> Nullable<Text>,
                active_method -> Nullable<Text>,
                ui -> DbJson,
                csrf_token -> Text,
                identity_id -> Nullable<DbUuid>,
                session_id -> Nullable<DbUuid>,
                data -> DbJson,
                issued_at -> DbTimestamptz,
                expires_at -> DbTimestamptz,
                created_at -> DbTimestamptz,
                updated_at -> DbTimestamptz,
                version -> BigInt,
            }
        }
    };
}

flow_table!(selfservice_login_flows);
flow_table!(selfservice_registration_flows);
flow_table!(selfservice_recovery_flows);
flow_table!(selfservice_verification_flows);
flow_table!(selfservice_settings_flows);

diesel::table! {
    use diesel::sql_types::*;
    use crate::persistence::types::{DbTimestamptz, DbUuid};

    selfservice_codes (id) {
        id -> DbUuid,
        flow_id -> DbUuid,
        flow_kind -> Text,
        method -> Text,
        digest -> Text,
        identity_id -> Nullable<DbUuid>,
        address_value -> Text,
        address_via -> Text,
        by_admin -> Bool,
        used_at -> Nullable<DbTimestamptz>,
        expires_at -> DbTimestamptz,
        created_at -> DbTimestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::persistence::types::{DbJson, DbTimestamptz, DbUuid};

    selfservice_errors (id) {
        id -> DbUuid,
        error -> DbJson,
        csrf_token -> Text,
        was_seen -> Bool,
        seen_at -> Nullable<DbTimestamptz>,
        created_at -> DbTimestamptz,
        updated_at -> DbTimestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::persistence::types::DbTimestamptz;

    brute_force_counters (key) {
        key -> Text,
        failures -> Integer,
        window_start -> DbTimestamptz,
        locked_until -> Nullable<DbTimestamptz>,
        updated_at -> DbTimestamptz,
        lockouts -> Integer,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::persistence::types::{DbTimestamptz, DbUuid};

    session_token_exchanges (id) {
        id -> DbUuid,
        flow_id -> DbUuid,
        session_id -> Nullable<DbUuid>,
        init_code_hash -> Text,
        return_to_code_hash -> Text,
        session_token_sealed -> Nullable<Text>,
        created_at -> DbTimestamptz,
        updated_at -> DbTimestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::persistence::types::{DbJson, DbTimestamptz, DbUuid};

    courier_messages (id) {
        id -> DbUuid,
        #[sql_name = "type"]
        kind -> SmallInt,
        status -> SmallInt,
        channel -> Nullable<Text>,
        recipient -> Text,
        subject -> Text,
        body -> Text,
        template_type -> Text,
        template_data -> Nullable<DbJson>,
        send_count -> Integer,
        next_attempt_at -> Nullable<DbTimestamptz>,
        created_at -> DbTimestamptz,
        updated_at -> DbTimestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::persistence::types::{DbJson, DbTimestamptz, DbUuid};

    courier_message_dispatches (id) {
        id -> DbUuid,
        message_id -> DbUuid,
        status -> Text,
        error -> Nullable<DbJson>,
        created_at -> DbTimestamptz,
        updated_at -> DbTimestamptz,
    }
}
