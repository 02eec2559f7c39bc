//! The watch half of the store, through its public traits, on a real SQLite file.

use std::sync::Arc;

use argus_detect::{
    AlertChange, AlertDraft, AlertFilter, AlertStatus, AlertStore, Attack, AuditLog, AuditRecord, BatchAppended,
    BreakReason, ChainLinker, ChainVerdict, Feature, KeyType, Severity, WatchStoreError, chain_hash,
};
use argus_model::{Event, EventKind, Login, LoginFailure, LoginOutcome, Principal, Timestamp};
use argus_store::Store;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).await.unwrap();
    (dir, store)
}

fn failure(secs: i64, user: &str) -> Event {
    Event::new(
        Timestamp::from_secs(secs),
        "issuer",
        Principal { ip: Some("203.0.113.7".into()), ..Default::default() },
        EventKind::Login(Login { username: user.into(), outcome: LoginOutcome::Failure(LoginFailure::BadPassword) }),
    )
}

async fn append_n(store: &Store, n: i64) -> Vec<Event> {
    let mut events = Vec::new();
    for i in 0..n {
        let e = failure(1_000 + i, &format!("user{i}"));
        store.append(&e).await.unwrap();
        events.push(e);
    }
    events
}

#[tokio::test]
async fn the_chain_links_every_event_and_verifies() {
    let (_dir, store) = store().await;
    let events = append_n(&store, 5).await;
    let records = store.records_after(0, 100).await.unwrap();
    assert_eq!(records.len(), 5);
    for (i, (record, event)) in records.iter().zip(&events).enumerate() {
        assert_eq!(record.seq, i as u64 + 1);
        assert_eq!(record.event_id, event.id);
        assert_eq!((record.event_type.as_str(), record.time), ("Login", event.time));
        assert_eq!(serde_json::from_str::<Event>(&record.json).unwrap(), *event);
        assert_eq!(record.hash, chain_hash(&record.prev_hash, &record.json));
        if i > 0 {
            assert_eq!(record.prev_hash, records[i - 1].hash);
        }
    }
    let verdict = store.verify_chain().await.unwrap();
    assert_eq!(verdict, ChainVerdict::Intact { records: 5, head: Some((5, records[4].hash.clone())) });
    assert_eq!(store.records_after(3, 100).await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_empty_log_verifies_and_a_repeated_event_is_logged_once() {
    let (_dir, store) = store().await;
    assert_eq!(store.verify_chain().await.unwrap(), ChainVerdict::Intact { records: 0, head: None });
    let e = failure(1, "alice");
    let first = store.append(&e).await.unwrap();
    let again = store.append(&e).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(store.records_after(0, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_log_refuses_edits_and_an_edit_behind_its_back_is_detected() {
    let (_dir, store) = store().await;
    append_n(&store, 5).await;
    let edit = "UPDATE audit_log SET event_json = replace(event_json, 'user2', 'user9') WHERE seq = 3";
    let refused = sqlx::query(edit).execute(store.pool()).await.unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    // Someone with the database file can drop the guard; the chain still tells.
    sqlx::query("DROP TRIGGER audit_log_no_update").execute(store.pool()).await.unwrap();
    assert_eq!(sqlx::query(edit).execute(store.pool()).await.unwrap().rows_affected(), 1);
    let ChainVerdict::Broken(b) = store.verify_chain().await.unwrap() else { panic!("edit not detected") };
    assert_eq!((b.seq, b.reason), (3, BreakReason::HashMismatch));
}

#[tokio::test]
async fn the_log_refuses_a_row_that_does_not_link_to_the_one_before() {
    let (_dir, store) = store().await;
    let records = chained(&store, &failures(0, 3)).await;
    store.append_batch(&records[..2]).await.unwrap();
    let insert = |seq: i64, event_id: &str, prev_hash: &str| {
        sqlx::query(
            "INSERT INTO audit_log (seq, event_id, time_ms, event_type, event_json, prev_hash, hash) \
             VALUES ($1, $2, 0, 'Login', '{}', $3, 'h')",
        )
        .bind(seq)
        .bind(event_id.to_owned())
        .bind(prev_hash.to_owned())
        .execute(store.pool())
    };
    // A fork (a second row after record 1) and a gap (a row after a record that does not exist).
    for (seq, prev_hash) in [(3, records[0].hash.as_str()), (4, records[1].hash.as_str())] {
        let refused = insert(seq, "forged", prev_hash).await.unwrap_err();
        assert!(refused.to_string().contains("must link to the record before it"), "{refused}");
    }
    // A second first record (the primary key refuses it).
    assert!(insert(1, "forged", argus_detect::GENESIS_HASH).await.is_err());
    // A row that does link is accepted, whoever writes it.
    insert(3, "linked", &records[1].hash).await.unwrap();
    assert_eq!(store.records_after(0, 10).await.unwrap().len(), 3);
}

/// A log written before migration 0005 is carried over intact, and watch's appends continue its chain.
#[tokio::test]
async fn an_existing_log_survives_the_upgrade_to_batched_appends() {
    let dir = tempfile::tempdir().unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.path().join(argus_store::SQLITE_FILE))
        .create_if_missing(true);
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    sqlx::migrate!("./migrations").run_to(4, &pool).await.unwrap();
    let mut linker = ChainLinker::default();
    let old: Vec<AuditRecord> = failures(0, 300).iter().map(|e| linker.link(e).unwrap()).collect();
    for r in &old {
        sqlx::query(
            "INSERT INTO audit_log (seq, event_id, time_ms, event_type, event_json, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(r.seq as i64)
        .bind(&r.event_id)
        .bind(r.time.as_millis())
        .bind(&r.event_type)
        .bind(&r.json)
        .bind(&r.prev_hash)
        .bind(&r.hash)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let store = Store::open_dir(dir.path()).await.unwrap();
    assert_eq!(store.records_after(0, 1_000).await.unwrap(), old);
    let more = chained(&store, &failures(300, 10)).await;
    assert_eq!(store.append_batch(&more).await.unwrap().appended, 10);
    assert_eq!(
        store.verify_chain().await.unwrap(),
        ChainVerdict::Intact { records: 310, head: Some((310, more[9].hash.clone())) }
    );
    let refused = sqlx::query("DELETE FROM audit_log WHERE seq = 1").execute(store.pool()).await.unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
}

#[tokio::test]
async fn a_deleted_row_is_detected() {
    let (_dir, store) = store().await;
    append_n(&store, 5).await;
    let delete = "DELETE FROM audit_log WHERE seq = 2";
    assert!(sqlx::query(delete).execute(store.pool()).await.is_err());
    sqlx::query("DROP TRIGGER audit_log_no_delete").execute(store.pool()).await.unwrap();
    sqlx::query(delete).execute(store.pool()).await.unwrap();
    let ChainVerdict::Broken(b) = store.verify_chain().await.unwrap() else { panic!("deletion not detected") };
    assert_eq!((b.seq, b.reason), (3, BreakReason::Gap { expected: 2 }));
}

#[tokio::test]
async fn verification_pages_through_a_long_log() {
    let (_dir, store) = store().await;
    append_n(&store, 2_500).await;
    let ChainVerdict::Intact { records, .. } = store.verify_chain().await.unwrap() else { panic!("broken") };
    assert_eq!(records, 2_500);
}

#[tokio::test]
async fn concurrent_appends_do_not_fork_the_chain() {
    let (_dir, store) = store().await;
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.append(&failure(i, "x")).await.map(|r| r.seq) }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=40).collect::<Vec<u64>>());
    assert!(store.verify_chain().await.unwrap().is_intact());
}

/// Records for `events` chained after the store's current head, as watch's writer makes them.
async fn chained(store: &Store, events: &[Event]) -> Vec<AuditRecord> {
    let mut linker = ChainLinker::after(store.head().await.unwrap());
    events.iter().map(|e| linker.link(e).unwrap()).collect()
}

fn failures(from: i64, n: i64) -> Vec<Event> {
    (from..from + n).map(|i| failure(1_000 + i, &format!("user{i}"))).collect()
}

#[tokio::test]
async fn a_batch_is_appended_in_order_and_the_chain_verifies() {
    let (_dir, store) = store().await;
    assert_eq!(store.head().await.unwrap(), None);
    // 700 rows: several multi-row statements (256 + 256 + 128 + 32 + 16 + 8 + 4) in one transaction.
    let events = failures(0, 700);
    let records = chained(&store, &events).await;
    let done = store.append_batch(&records).await.unwrap();
    let head = Some((700, records[699].hash.clone()));
    assert_eq!(done, BatchAppended { appended: 700, duplicates: 0, head: head.clone() });
    assert_eq!(store.head().await.unwrap(), head);
    assert_eq!(store.records_after(0, 1_000).await.unwrap(), records);

    // The next batch continues the chain, and a single append after it too.
    let more = chained(&store, &failures(700, 3)).await;
    assert_eq!(store.append_batch(&more).await.unwrap().appended, 3);
    assert_eq!(store.append(&failure(5, "single")).await.unwrap().seq, 704);
    assert_eq!(
        store.verify_chain().await.unwrap(),
        ChainVerdict::Intact { records: 704, head: store.head().await.unwrap() }
    );
    let empty = store.append_batch(&[]).await.unwrap();
    assert_eq!((empty.appended, empty.head.map(|h| h.0)), (0, Some(704)));
}

#[tokio::test]
async fn duplicates_in_a_batch_are_skipped_and_the_chain_links_only_written_rows() {
    let (_dir, store) = store().await;
    let logged = failures(0, 2);
    store.append_batch(&chained(&store, &logged).await).await.unwrap();

    // A batch that repeats an event already logged and, further on, one of its own.
    let fresh = failures(2, 3);
    let batch = [fresh[0].clone(), logged[1].clone(), fresh[1].clone(), fresh[0].clone(), fresh[2].clone()];
    let records = chained(&store, &batch).await;
    let done = store.append_batch(&records).await.unwrap();
    assert_eq!((done.appended, done.duplicates), (3, 2));

    let rows = store.records_after(0, 100).await.unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
    let expected: Vec<&str> = logged.iter().chain(&fresh).map(|e| e.id.as_str()).collect();
    assert_eq!(ids, expected, "each event once, in batch order");
    assert_eq!(done.head, Some((5, rows[4].hash.clone())));
    assert!(store.verify_chain().await.unwrap().is_intact());

    // Only duplicates: nothing written, the head stays.
    let again = store.append_batch(&chained(&store, &logged).await).await.unwrap();
    assert_eq!((again.appended, again.duplicates, again.head), (0, 2, done.head));
    assert_eq!(store.records_after(0, 100).await.unwrap().len(), 5);
}

#[tokio::test]
async fn a_batch_chained_after_a_stale_head_writes_nothing() {
    let (_dir, store) = store().await;
    let records = chained(&store, &failures(0, 3)).await;
    // Another writer appends first: the batch's head (the empty log) is stale.
    store.append(&failure(1, "other writer")).await.unwrap();
    let err = store.append_batch(&records).await.unwrap_err();
    assert!(matches!(err, WatchStoreError::StaleHead { expected: 0, found: 1 }), "{err}");
    assert_eq!(store.records_after(0, 10).await.unwrap().len(), 1);

    // A head the log never had (ahead of it) is refused too: no gap.
    let mut ahead = chained(&store, &failures(3, 1)).await;
    ahead[0] = ahead[0].relinked(Some(argus_detect::ChainHead { seq: 5, hash: &ahead[0].hash }));
    assert!(matches!(store.append_batch(&ahead).await, Err(WatchStoreError::StaleHead { expected: 5, found: 1 })));

    let fresh = chained(&store, &failures(0, 3)).await;
    assert_eq!(store.append_batch(&fresh).await.unwrap().appended, 3);
    assert!(store.verify_chain().await.unwrap().is_intact());
}

#[tokio::test]
async fn recording_drafts_in_one_go_gives_the_changes_of_one_at_a_time() {
    let (_dir, store) = store().await;
    store.record_alert(draft(1, "198.51.100.1", Severity::Medium, &["e0"])).await.unwrap();
    let drafts = vec![
        draft(10, "203.0.113.7", Severity::Medium, &["e1"]),
        draft(11, "198.51.100.1", Severity::Medium, &["e2"]),
        draft(12, "203.0.113.7", Severity::Medium, &["e3"]),
        draft(13, "203.0.113.7", Severity::High, &["e4"]),
    ];
    let changes = store.record_alerts(drafts).await.unwrap();
    let kinds: Vec<&str> = changes
        .iter()
        .map(|c| match c {
            AlertChange::Opened(_) => "opened",
            AlertChange::Updated(_) => "updated",
            AlertChange::Escalated { .. } => "escalated",
        })
        .collect();
    assert_eq!(kinds, ["opened", "updated", "updated", "escalated"]);
    assert_eq!(changes[0].alert().count, 1, "each change is the alert as of its draft");
    assert_eq!(changes[3].alert().evidence, ["e1", "e3", "e4"]);

    // What was stored is the last state of each key.
    let stored = store.alert(&changes[3].alert().id).await.unwrap().unwrap();
    assert_eq!(stored, *changes[3].alert());
    let older = store.alert(&changes[1].alert().id).await.unwrap().unwrap();
    assert_eq!((older.count, older.evidence.as_slice()), (2, &["e0".to_owned(), "e2".to_owned()][..]));
    assert_eq!(store.alerts(&AlertFilter::default()).await.unwrap().len(), 2);
    assert!(store.record_alerts(Vec::new()).await.unwrap().is_empty());
}

fn draft(secs: i64, key: &str, severity: Severity, evidence: &[&str]) -> AlertDraft {
    AlertDraft {
        detector: "failed_login".into(),
        attack: Attack::BruteForce,
        key_type: KeyType::Ip,
        key: key.into(),
        severity,
        time: Timestamp::from_secs(secs),
        first_seen: None,
        feature: Feature {
            name: "failed_logins_per_ip".into(),
            observed: 20.0 + secs as f64,
            threshold: 20.0,
            leak: "10/min".into(),
            explanation: format!("explanation at {secs}"),
            ..Feature::default()
        },
        evidence: evidence.iter().map(|s| s.to_string()).collect(),
    }
}

#[tokio::test]
async fn alerts_deduplicate_per_key_and_escalate() {
    let (_dir, store) = store().await;
    let AlertChange::Opened(first) =
        store.record_alert(draft(10, "203.0.113.7", Severity::Medium, &["e1"])).await.unwrap()
    else {
        panic!("first draft must open an alert")
    };
    let repeat = store.record_alert(draft(20, "203.0.113.7", Severity::Medium, &["e1", "e2"])).await.unwrap();
    let AlertChange::Updated(updated) = &repeat else { panic!("repeat must update: {repeat:?}") };
    assert!(!repeat.is_news());
    assert_eq!((updated.id.as_str(), updated.count), (first.id.as_str(), 2));
    assert_eq!(updated.evidence, ["e1", "e2"]);
    assert_eq!(updated.feature.explanation, "explanation at 20");

    let escalated = store.record_alert(draft(30, "203.0.113.7", Severity::High, &["e3"])).await.unwrap();
    let AlertChange::Escalated { alert, from } = &escalated else { panic!("must escalate: {escalated:?}") };
    assert!(escalated.is_news());
    assert_eq!(
        (alert.id.as_str(), *from, alert.severity, alert.count),
        (first.id.as_str(), Severity::Medium, Severity::High, 3)
    );

    // What was returned is what was stored.
    let stored = store.alert(&first.id).await.unwrap().unwrap();
    assert_eq!(stored, *alert);
    assert_eq!((stored.first_seen, stored.last_seen), (Timestamp::from_secs(10), Timestamp::from_secs(30)));
    assert_eq!(stored.evidence, ["e1", "e2", "e3"]);
    assert_eq!(stored.status, AlertStatus::Open);

    // Another key, or another attack on the same key, is another alert.
    assert!(matches!(
        store.record_alert(draft(40, "198.51.100.1", Severity::Medium, &[])).await.unwrap(),
        AlertChange::Opened(_)
    ));
    let stuffing = AlertDraft { attack: Attack::CredentialStuffing, ..draft(50, "203.0.113.7", Severity::Medium, &[]) };
    assert!(matches!(store.record_alert(stuffing).await.unwrap(), AlertChange::Opened(_)));
    assert!(store.alert("no-such-id").await.unwrap().is_none());
}

#[tokio::test]
async fn a_resolved_alert_is_not_reopened_by_a_new_draft() {
    let (_dir, store) = store().await;
    let first = store.record_alert(draft(10, "203.0.113.7", Severity::Medium, &[])).await.unwrap();
    sqlx::query("UPDATE alerts SET status = 'resolved' WHERE id = $1")
        .bind(&first.alert().id)
        .execute(store.pool())
        .await
        .unwrap();
    let next = store.record_alert(draft(20, "203.0.113.7", Severity::Medium, &[])).await.unwrap();
    let AlertChange::Opened(next) = next else { panic!("a new draft after resolution must open a new alert") };
    assert_ne!(next.id, first.alert().id);
}

#[tokio::test]
async fn alerts_list_newest_first_with_filters_and_limit() {
    let (_dir, store) = store().await;
    for (secs, key) in [(10, "a"), (30, "b"), (20, "c")] {
        store.record_alert(draft(secs, key, Severity::Medium, &[])).await.unwrap();
    }
    let stuffing = AlertDraft { attack: Attack::CredentialStuffing, ..draft(5, "d", Severity::Medium, &[]) };
    store.record_alert(stuffing).await.unwrap();

    let keys = |alerts: Vec<argus_detect::Alert>| alerts.into_iter().map(|a| a.key).collect::<Vec<_>>();
    assert_eq!(keys(store.alerts(&AlertFilter::default()).await.unwrap()), ["b", "c", "a", "d"]);
    let brute = AlertFilter { attack: Some(Attack::BruteForce), ..AlertFilter::default() };
    assert_eq!(keys(store.alerts(&brute).await.unwrap()), ["b", "c", "a"]);
    let one_key = AlertFilter { key_type: Some(KeyType::Ip), key: Some("c".into()), ..AlertFilter::default() };
    assert_eq!(keys(store.alerts(&one_key).await.unwrap()), ["c"]);
    let accounts = AlertFilter { key_type: Some(KeyType::Account), ..AlertFilter::default() };
    assert!(store.alerts(&accounts).await.unwrap().is_empty());
    let resolved = AlertFilter { status: Some(AlertStatus::Resolved), ..AlertFilter::default() };
    assert!(store.alerts(&resolved).await.unwrap().is_empty());
    let two = AlertFilter { limit: 2, ..AlertFilter::default() };
    assert_eq!(keys(store.alerts(&two).await.unwrap()), ["b", "c"]);
    let page = store.alerts(&two).await.unwrap();
    let next = AlertFilter { before: Some(argus_detect::AlertCursor::after(&page[1])), ..two.clone() };
    assert_eq!(keys(store.alerts(&next).await.unwrap()), ["a", "d"]);
}

#[tokio::test]
async fn alert_pages_split_alerts_seen_at_the_same_moment_by_id() {
    let (_dir, store) = store().await;
    for key in ["a", "b", "c", "d", "e"] {
        store.record_alert(draft(10, key, Severity::Medium, &[])).await.unwrap();
    }
    let mut filter = AlertFilter { limit: 2, ..AlertFilter::default() };
    let mut seen = Vec::new();
    loop {
        let page = store.alerts(&filter).await.unwrap();
        seen.extend(page.iter().map(|a| a.key.clone()));
        match page.last() {
            Some(last) if page.len() == 2 => filter.before = Some(argus_detect::AlertCursor::after(last)),
            _ => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
}
