//! The write-behind Persister against real databases: group commit, durability classes,
//! coalescing, ordering, isolation of bad writes, restart, outages and back-pressure.

use crate::both_backends;
use crate::harness::{Db, TestApp, identity, stored};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tessera::persistence::{Durability, WriteError, WriteOp};

fn upsert(i: &tessera::identity::Identity) -> WriteOp {
    WriteOp::UpsertIdentity(Box::new(i.clone()))
}

async fn group_commit(db: Db) {
    let t = TestApp::new(db).await;
    let state = t.app().state();
    let p = state.persister.clone();
    let ids: Vec<_> = (0..200).map(|n| identity(&format!("user{n}@example.com"))).collect();
    let writes = ids.iter().map(|i| {
        let p = p.clone();
        let op = upsert(i);
        async move { p.write(op, Durability::Durable).await }
    });
    let results = futures_util::future::join_all(writes).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // acknowledged means committed: every row is readable right away
    for i in &ids {
        let got = stored(&state.store, i.id).await.expect("acknowledged write is stored");
        assert_eq!(got.traits, i.traits);
        assert_eq!(got.credentials["password"].identifiers, i.credentials["password"].identifiers);
        assert_eq!(got.verifiable_addresses.len(), 1);
    }
    let tx = p.stats().transactions.load(Ordering::Relaxed);
    let ops = p.stats().operations.load(Ordering::Relaxed);
    assert_eq!(ops, 200);
    assert!(tx <= 40, "200 durable writes should share few transactions, took {tx}");
    eprintln!("group commit: 200 durable writes in {tx} transactions");
}
both_backends!(group_commit);

async fn deferred_returns_at_once_and_lands_within_interval(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| c.persistence.flush_interval = tessera::config::Dur(Duration::from_millis(300)))
        .build()
        .await;
    let state = t.app().state();
    let i = identity("deferred@example.com");
    state.persister.write(upsert(&i), Durability::Deferred).await.unwrap();
    // returned before anything was committed
    assert_eq!(state.persister.pending(), 1);
    assert!(stored(&state.store, i.id).await.is_none());
    let start = Instant::now();
    while stored(&state.store, i.id).await.is_none() {
        assert!(start.elapsed() < Duration::from_secs(5), "deferred write never landed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The count drops right after the commit that made the row visible.
    while state.persister.pending() != 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "the landed write is still counted as pending");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
both_backends!(deferred_returns_at_once_and_lands_within_interval);

async fn coalesces_writes_to_one_row(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| c.persistence.flush_interval = tessera::config::Dur(Duration::from_millis(200)))
        .build()
        .await;
    let state = t.app().state();
    let p = &state.persister;
    let mut i = identity("coalesce@example.com");
    for n in 0..50 {
        i.metadata_admin = Some(serde_json::json!({"n": n}));
        p.write(upsert(&i), Durability::Deferred).await.unwrap();
    }
    assert_eq!(p.pending(), 1, "50 writes to one row wait as one");
    p.flush().await;
    assert_eq!(stored(&state.store, i.id).await.unwrap().metadata_admin, Some(serde_json::json!({"n": 49})));
    assert_eq!(p.stats().operations.load(Ordering::Relaxed), 1);
    assert_eq!(p.stats().coalesced.load(Ordering::Relaxed), 49);

    // a delete after an upsert wins; an upsert after a delete wins
    let a = identity("a@example.com");
    p.write(upsert(&a), Durability::Deferred).await.unwrap();
    p.write(WriteOp::DeleteIdentity(a.id), Durability::Deferred).await.unwrap();
    let b = identity("b@example.com");
    p.write(upsert(&b), Durability::Durable).await.unwrap();
    p.write(WriteOp::DeleteIdentity(b.id), Durability::Deferred).await.unwrap();
    p.write(upsert(&b), Durability::Durable).await.unwrap();
    p.flush().await;
    assert!(stored(&state.store, a.id).await.is_none());
    assert!(stored(&state.store, b.id).await.is_some());
}
both_backends!(coalesces_writes_to_one_row);

async fn one_bad_write_fails_alone(db: Db) {
    let t = TestApp::new(db).await;
    let state = t.app().state();
    let p = state.persister.clone();
    // three identities in one batch: two claim the same password identifier
    let first = identity("taken@example.com");
    let mut second = identity("other@example.com");
    second.credentials.get_mut("password").unwrap().identifiers = vec!["taken@example.com".into()];
    let third = identity("fine@example.com");
    let (r1, r2, r3) = tokio::join!(
        p.write(upsert(&first), Durability::Durable),
        p.write(upsert(&second), Durability::Durable),
        p.write(upsert(&third), Durability::Durable),
    );
    let outcomes = [&r1, &r2];
    assert_eq!(outcomes.iter().filter(|r| r.is_ok()).count(), 1, "{r1:?} {r2:?}");
    assert!(outcomes.iter().any(|r| matches!(r, Err(WriteError::Conflict(_)))), "{r1:?} {r2:?}");
    assert!(r3.is_ok());
    assert!(stored(&state.store, third.id).await.is_some());
    let loser = if r1.is_ok() { second.id } else { first.id };
    assert!(stored(&state.store, loser).await.is_none(), "a refused write changes nothing");
}
both_backends!(one_bad_write_fails_alone);

async fn survives_actor_restart(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| c.persistence.flush_interval = tessera::config::Dur(Duration::from_millis(500)))
        .build()
        .await;
    let state = t.app().state();
    let p = &state.persister;
    let ids: Vec<_> = (0..20).map(|n| identity(&format!("restart{n}@example.com"))).collect();
    for i in &ids {
        p.write(upsert(i), Durability::Deferred).await.unwrap();
    }
    p.crash_actor();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let durable = identity("after-restart@example.com");
    p.write(upsert(&durable), Durability::Durable).await.unwrap();
    p.flush().await;
    for i in ids.iter().chain([&durable]) {
        assert!(stored(&state.store, i.id).await.is_some(), "write lost across restart");
    }
}
both_backends!(survives_actor_restart);

async fn retries_through_failed_commits(db: Db) {
    let t = TestApp::new(db).await;
    let state = t.app().state();
    let p = state.persister.clone();
    p.inject_commit_failures(3);
    let ids: Vec<_> = (0..50).map(|n| identity(&format!("retry{n}@example.com"))).collect();
    let results = futures_util::future::join_all(ids.iter().map(|i| {
        let p = p.clone();
        let op = upsert(i);
        async move { p.write(op, Durability::Durable).await }
    }))
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(p.stats().retries.load(Ordering::Relaxed) >= 3);
    for i in &ids {
        assert!(stored(&state.store, i.id).await.is_some(), "acknowledged write lost");
    }
}
both_backends!(retries_through_failed_commits);

async fn back_pressure_bounds_the_buffer(db: Db) {
    let t = TestApp::builder(db).config(|c| c.persistence.buffer_size = 4).build().await;
    let state = t.app().state();
    let p = state.persister.clone();
    p.inject_commit_failures(5);
    let ids: Vec<_> = (0..30).map(|n| identity(&format!("bp{n}@example.com"))).collect();
    let writer = {
        let p = p.clone();
        let ids = ids.clone();
        tokio::spawn(async move {
            for i in &ids {
                p.write(upsert(i), Durability::Deferred).await.unwrap();
            }
        })
    };
    let mut max_pending = 0;
    while !writer.is_finished() {
        max_pending = max_pending.max(p.pending());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    writer.await.unwrap();
    p.flush().await;
    assert!(max_pending <= 4, "buffer grew to {max_pending}");
    for i in &ids {
        assert!(stored(&state.store, i.id).await.is_some());
    }
}
both_backends!(back_pressure_bounds_the_buffer);

async fn graceful_stop_flushes_deferred_writes(db: Db) {
    let mut t = TestApp::builder(db)
        .config(|c| c.persistence.flush_interval = tessera::config::Dur(Duration::from_secs(30)))
        .build()
        .await;
    let store = t.app().state().store.clone();
    let ids: Vec<_> = (0..10).map(|n| identity(&format!("stop{n}@example.com"))).collect();
    for i in &ids {
        t.app().state().persister.write(upsert(i), Durability::Deferred).await.unwrap();
    }
    t.stop().await;
    for i in &ids {
        assert!(stored(&store, i.id).await.is_some(), "deferred write lost on graceful stop");
    }
}
both_backends!(graceful_stop_flushes_deferred_writes);

/// PostgreSQL only: the server kills this test's connections again and again while
/// durable writes are in flight; every acknowledged write must be in the database.
#[actix_web::test]
async fn postgres_connection_killed_mid_batch() {
    let Ok(base) = std::env::var("DATABASE_URL") else {
        crate::harness::cannot_run("DATABASE_URL is not set (test not run)");
        return;
    };
    let t = TestApp::new(Db::Postgres).await;
    let state = t.app().state();
    let p = state.persister.clone();
    let tag = t.db.tag.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = tokio::spawn(crate::harness::kill_connections_until(base, tag, stop.clone()));
    let ids: Vec<_> = (0..300).map(|n| identity(&format!("kill{n}@example.com"))).collect();
    let mut acknowledged = Vec::new();
    for chunk in ids.chunks(30) {
        let results = futures_util::future::join_all(chunk.iter().map(|i| {
            let p = p.clone();
            let op = upsert(i);
            async move { p.write(op, Durability::Durable).await }
        }))
        .await;
        for (i, r) in chunk.iter().zip(results) {
            if r.is_ok() {
                acknowledged.push(i.id);
            }
        }
        // Some chunks must run while connections are being killed.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let kills = killer.await.unwrap();
    // Under a kill every 15 ms some writes may be refused after bounded retries (their callers
    // are told); none that was acknowledged may be missing.
    assert!(!acknowledged.is_empty());
    for id in &acknowledged {
        assert!(stored(&state.store, *id).await.is_some(), "acknowledged durable write {id} was lost");
    }
    eprintln!(
        "killed {kills} connections; acknowledged {}/{}; retries: {}",
        acknowledged.len(),
        ids.len(),
        p.stats().retries.load(Ordering::Relaxed)
    );
    assert!(kills > 0, "the test must actually kill connections");
}

/// Writes keep arrival order when a value moves between rows: merging A's second write into
/// its first would apply it before B gives the value up.
async fn coalescing_never_reorders_a_moved_identifier(db: Db) {
    let t = TestApp::builder(db)
        .config(|c| c.persistence.flush_interval = tessera::config::Dur(Duration::from_secs(30)))
        .build()
        .await;
    let state = t.app().state();
    let p = &state.persister;
    let mut a = identity("a@example.com");
    let mut b = identity("x@example.com");
    p.write(upsert(&a), Durability::Deferred).await.unwrap();
    p.write(upsert(&b), Durability::Deferred).await.unwrap();
    b.credentials.get_mut("password").unwrap().identifiers = vec!["y@example.com".into()];
    p.write(upsert(&b), Durability::Deferred).await.unwrap();
    a.credentials.get_mut("password").unwrap().identifiers = vec!["x@example.com".into()];
    let (ra, ()) = tokio::join!(p.write(upsert(&a), Durability::Durable), p.flush());
    assert_eq!(ra, Ok(()));
    p.flush().await;
    assert_eq!(stored(&state.store, a.id).await.unwrap().credentials["password"].identifiers, ["x@example.com"]);
    assert_eq!(stored(&state.store, b.id).await.unwrap().credentials["password"].identifiers, ["y@example.com"]);
}
both_backends!(coalescing_never_reorders_a_moved_identifier);

/// A flush loop that dies fails the writes it held (their callers get an answer) and is
/// started again for the writes that follow.
async fn a_dead_flush_loop_fails_its_writes_and_restarts(db: Db) {
    let t = TestApp::new(db).await;
    let state = t.app().state();
    let p = state.persister.clone();
    p.inject_loop_panic();
    let lost = identity("loop-died@example.com");
    let start = Instant::now();
    assert_eq!(p.write(upsert(&lost), Durability::Durable).await, Err(WriteError::Stopped));
    assert!(start.elapsed() < Duration::from_secs(2), "the waiter was answered late");
    // The restarted loop commits what follows.
    let next = identity("loop-restarted@example.com");
    tokio::time::timeout(Duration::from_secs(5), p.write(upsert(&next), Durability::Durable))
        .await
        .expect("the loop was not restarted")
        .unwrap();
    assert!(stored(&state.store, next.id).await.is_some());
    assert!(stored(&state.store, lost.id).await.is_none(), "a failed write was committed");
}
both_backends!(a_dead_flush_loop_fails_its_writes_and_restarts);

/// A flow write based on an older state (another instance's stale copy) never replaces a
/// newer stored one; a newer one does.
async fn stale_flow_writes_never_replace_newer_ones(db: Db) {
    use tessera::persistence::selfservice::{FlowRecord, FlowTable, find_flow};
    let t = TestApp::new(db).await;
    let state = t.app().state();
    let p = state.persister.clone();
    let now = tessera::clock::Clock::system().now();
    let record = |state: &str, version: i64| FlowRecord {
        table: FlowTable::Login,
        id: uuid::Uuid::nil(),
        flow_type: "api".into(),
        state: state.into(),
        request_url: "http://localhost/self-service/login/api".into(),
        return_to: None,
        active_method: None,
        ui: serde_json::json!({}),
        csrf_token: String::new(),
        data: serde_json::json!({}),
        issued_at: now,
        expires_at: now + chrono::Duration::hours(1),
        created_at: now,
        updated_at: now,
        version,
    };
    let stored = || async {
        let mut pooled = state.store.get().await.unwrap();
        find_flow(&mut pooled.conn(), FlowTable::Login, uuid::Uuid::nil()).await.unwrap().unwrap()
    };
    for (state_name, version) in [("choose_method", 0), ("sent_email", 2), ("passed_challenge", 1), ("show_form", 2)] {
        p.write(WriteOp::UpsertFlow(Box::new(record(state_name, version))), Durability::Durable).await.unwrap();
    }
    let got = stored().await;
    assert_eq!((got.state.as_str(), got.version), ("sent_email", 2), "an older or equal version replaced a newer one");
    p.write(WriteOp::UpsertFlow(Box::new(record("passed_challenge", 3))), Durability::Durable).await.unwrap();
    assert_eq!(stored().await.state, "passed_challenge");
}
both_backends!(stale_flow_writes_never_replace_newer_ones);
