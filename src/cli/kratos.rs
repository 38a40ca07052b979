//! `tessera migrate from-kratos --source-dsn DSN`: copies identities (credentials of every type
//! with their hashes and configs as they are, identifiers, verifiable and recovery addresses,
//! metadata) and active sessions from a Kratos database into tessera's store, keeping their
//! ids. Kratos keeps session tokens in clear; tessera stores their SHA-256, so users stay signed
//! in with the tokens they have. What is already in tessera (same id) is left alone, so the
//! command can be run again after an interruption, or to pick up what changed since.

use crate::persistence::Store;
use crate::persistence::kratos::{self, KratosSession};
use crate::persistence::persister::{Durability, Persister, WriteOp};
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashSet;
use uuid::Uuid;

/// What a migration did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub identities: usize,
    /// Already in tessera (an earlier run).
    pub identities_present: usize,
    /// Refused by tessera's store (e.g. an identifier another identity has), or unreadable.
    pub identities_failed: usize,
    pub sessions: usize,
    /// Revoked, expired, of an identity that was not migrated, or already present.
    pub sessions_skipped: usize,
    pub sessions_failed: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "identities: {} copied, {} already present, {} failed; sessions: {} copied, {} skipped, {} failed",
            self.identities,
            self.identities_present,
            self.identities_failed,
            self.sessions,
            self.sessions_skipped,
            self.sessions_failed
        )
    }
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template = format!("{{bar:40}} {{pos}}/{{len}} {what} ({{per_sec}}, eta {{eta}})");
    bar.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

/// Copies everything from `source` into `target` (through `persister`), `batch` rows at a time.
pub async fn migrate(
    source: &Store,
    target: &Store,
    persister: &Persister,
    batch: usize,
    now: DateTime<Utc>,
) -> anyhow::Result<Summary> {
    let batch = batch.clamp(1, 5000);
    let mut summary = Summary::default();
    let (identity_total, session_total) = kratos::counts(source).await?;

    let progress = bar(identity_total, "identities");
    let mut after = None;
    loop {
        let (identities, last, broken) = kratos::identities_after(source, after, batch).await?;
        summary.identities_failed += broken;
        if last.is_none() {
            break;
        }
        after = last;
        let ids: Vec<Uuid> = identities.iter().map(|i| i.id).collect();
        let present: HashSet<Uuid> = kratos::present(target, "identities", &ids).await?.into_iter().collect();
        let writes = identities.into_iter().filter(|i| !present.contains(&i.id)).map(|identity| {
            let id = identity.id;
            async move { (id, persister.write(WriteOp::UpsertIdentity(Box::new(identity)), Durability::Durable).await) }
        });
        summary.identities_present += present.len();
        for (id, result) in futures_util::future::join_all(writes).await {
            match result {
                Ok(()) => summary.identities += 1,
                Err(e) => {
                    summary.identities_failed += 1;
                    progress.suspend(|| eprintln!("identity {id}: {e}"));
                }
            }
        }
        progress.inc(ids.len() as u64 + broken as u64);
    }
    progress.finish_and_clear();

    let progress = bar(session_total, "sessions");
    let mut after = None;
    loop {
        let (sessions, last) = kratos::sessions_after(source, after, batch).await?;
        if last.is_none() {
            break;
        }
        after = last;
        let seen = sessions.len() as u64;
        let live: Vec<KratosSession> =
            sessions.into_iter().filter(|s| s.session.active && s.session.expires_at > now).collect();
        let owners: Vec<Uuid> = live.iter().map(|s| s.session.identity_id).collect();
        let migrated: HashSet<Uuid> = kratos::present(target, "identities", &owners).await?.into_iter().collect();
        let ids: Vec<Uuid> = live.iter().map(|s| s.session.id).collect();
        let present: HashSet<Uuid> = kratos::present(target, "sessions", &ids).await?.into_iter().collect();
        let (mut copied, mut failed) = (0, 0);
        let writes =
            live.into_iter()
                .filter(|s| migrated.contains(&s.session.identity_id) && !present.contains(&s.session.id))
                .map(|k| {
                    let mut session = k.session;
                    session.token_hash = crate::session::token_hash(&k.token);
                    // Logout tokens Kratos handed out keep working; else the one tessera derives.
                    let logout = k.logout_token.unwrap_or_else(|| crate::session::logout_token_for(&k.token));
                    session.logout_token_hash = crate::session::token_hash(&logout);
                    let id = session.id;
                    async move {
                        (id, persister.write(WriteOp::UpsertSession(Box::new(session)), Durability::Durable).await)
                    }
                });
        for (id, result) in futures_util::future::join_all(writes).await {
            match result {
                Ok(()) => copied += 1,
                Err(e) => {
                    failed += 1;
                    progress.suspend(|| eprintln!("session {id}: {e}"));
                }
            }
        }
        summary.sessions += copied;
        summary.sessions_failed += failed;
        summary.sessions_skipped += (seen as usize).saturating_sub(copied + failed);
        progress.inc(seen);
    }
    progress.finish_and_clear();
    persister.flush().await;
    Ok(summary)
}
