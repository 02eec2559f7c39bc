//! Watch's responses in the store: actions, notifications, evidence and timelines, on a real SQLite file.

use argus_detect::respond::TIMELINE_SCAN;
use argus_detect::{
    ActionFilter, ActionKind, ActionRecord, ActionStatus, ActionStore, AuditLog, ChainLinker, KeyType, Notification,
    Target, TimelineQuery, UndoRefusal,
};
use argus_model::{Event, EventKind, Login, LoginOutcome, Principal, Timestamp};
use argus_store::Store;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_dir(dir.path()).await.unwrap();
    (dir, store)
}

fn action(
    id: &str,
    alert: &str,
    rule: &str,
    kind: ActionKind,
    status: ActionStatus,
    until: Option<i64>,
) -> ActionRecord {
    ActionRecord {
        id: id.into(),
        alert_id: alert.into(),
        rule: rule.into(),
        kind,
        target: Target::Ip("203.0.113.7".into()),
        status,
        time: Timestamp::from_secs(100),
        until: until.map(Timestamp::from_secs),
        detail: "blocked".into(),
        undone_at: None,
    }
}

fn login(secs: i64, ip: &str, user: &str) -> Event {
    Event::new(
        Timestamp::from_secs(secs),
        "issuer",
        Principal { ip: Some(ip.into()), sub: Some(format!("sub-{user}")), ..Default::default() },
        EventKind::Login(Login { username: user.into(), outcome: LoginOutcome::Success }),
    )
}

async fn append(store: &Store, events: &[Event]) {
    let mut linker = ChainLinker::after(store.head().await.unwrap());
    let records: Vec<_> = events.iter().map(|e| linker.link(e).unwrap()).collect();
    store.append_batch(&records).await.unwrap();
}

#[tokio::test]
async fn a_rule_acts_once_per_alert_while_its_action_stands() {
    let (_dir, store) = store().await;
    let now = Timestamp::from_secs(200);
    let first = action("01", "a1", "block-ip", ActionKind::Block, ActionStatus::Applied, Some(300));
    assert!(store.claim_action(&first, now).await.unwrap());
    assert_eq!(store.action("01").await.unwrap().as_ref(), Some(&first));
    // The block stands: the same rule on the same alert does nothing; another rule or alert does.
    assert!(
        !store
            .claim_action(&action("02", "a1", "block-ip", ActionKind::Block, ActionStatus::Applied, Some(900)), now)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_action(&action("03", "a1", "notify", ActionKind::Notify, ActionStatus::Applied, None), now)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_action(&action("04", "a2", "block-ip", ActionKind::Block, ActionStatus::Applied, Some(300)), now)
            .await
            .unwrap()
    );
    // Once the block has expired the rule may block again.
    let later = Timestamp::from_secs(300);
    assert!(
        store
            .claim_action(&action("05", "a1", "block-ip", ActionKind::Block, ActionStatus::Applied, Some(900)), later)
            .await
            .unwrap()
    );
    // A failed action does not stand.
    store.set_action_status("04", ActionStatus::Failed, "the bus is gone").await.unwrap();
    let failed = store.action("04").await.unwrap().unwrap();
    assert_eq!((failed.status, failed.detail.as_str()), (ActionStatus::Failed, "the bus is gone"));
    assert!(
        store
            .claim_action(&action("06", "a2", "block-ip", ActionKind::Block, ActionStatus::Applied, Some(900)), now)
            .await
            .unwrap()
    );

    // Newest first, by alert, in pages.
    let all = store.actions(&ActionFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["06", "05", "04", "03", "01"]);
    let of_a1 = ActionFilter { alert_id: Some("a1".into()), ..ActionFilter::default() };
    assert_eq!(store.actions(&of_a1).await.unwrap().len(), 3);
    let page = ActionFilter { before: Some("05".into()), limit: 2, ..ActionFilter::default() };
    assert_eq!(store.actions(&page).await.unwrap().iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["04", "03"]);
}

#[tokio::test]
async fn undo_lifts_blocks_in_force_only_and_sticks() {
    let (_dir, store) = store().await;
    let now = Timestamp::from_secs(200);
    store
        .claim_action(&action("b", "a1", "block", ActionKind::Block, ActionStatus::Applied, Some(300)), now)
        .await
        .unwrap();
    store
        .claim_action(&action("r", "a1", "revoke", ActionKind::Revoke, ActionStatus::Applied, Some(300)), now)
        .await
        .unwrap();
    store
        .claim_action(&action("o", "a1", "watching", ActionKind::Block, ActionStatus::Observed, Some(300)), now)
        .await
        .unwrap();
    assert_eq!(store.undo_action("nope", now).await.unwrap(), None);
    assert_eq!(store.undo_action("r", now).await.unwrap(), Some(Err(UndoRefusal::Irreversible(ActionKind::Revoke))));
    assert_eq!(store.undo_action("o", now).await.unwrap(), Some(Err(UndoRefusal::NothingToUndo)));
    let undone = store.undo_action("b", now).await.unwrap().unwrap().unwrap();
    assert_eq!((undone.status, undone.undone_at), (ActionStatus::Undone, Some(now)));
    assert_eq!(store.action("b").await.unwrap(), Some(undone));
    assert_eq!(store.undo_action("b", now).await.unwrap(), Some(Err(UndoRefusal::AlreadyUndone)));
    // An operator's undo sticks: the rule does not block again on this alert.
    assert!(
        !store
            .claim_action(
                &action("b2", "a1", "block", ActionKind::Block, ActionStatus::Applied, Some(900)),
                Timestamp::from_secs(1_000)
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.undo_action("r", Timestamp::from_secs(400)).await.unwrap(),
        Some(Err(UndoRefusal::Irreversible(ActionKind::Revoke)))
    );
}

#[tokio::test]
async fn notifications_are_kept_per_user() {
    let (_dir, store) = store().await;
    for (id, sub) in [("n1", "u1"), ("n2", "u2"), ("n3", "u1")] {
        let n = Notification {
            id: id.into(),
            sub: sub.into(),
            alert_id: "a1".into(),
            action_id: "x".into(),
            time: Timestamp::from_secs(5),
            message: "Someone may be using your account.".into(),
        };
        store.add_notification(&n).await.unwrap();
    }
    let u1 = store.notifications(Some("u1"), 100).await.unwrap();
    assert_eq!(u1.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["n3", "n1"]);
    assert_eq!(store.notifications(None, 2).await.unwrap().len(), 2);
}

#[tokio::test]
async fn evidence_events_are_read_back_from_the_audit_log() {
    let (_dir, store) = store().await;
    let events: Vec<Event> = (0..5).map(|i| login(i, "198.51.100.1", &format!("user{i}"))).collect();
    append(&store, &events).await;
    let ids = vec![events[3].id.clone(), "not-logged".into(), events[1].id.clone()];
    assert_eq!(store.events(&ids).await.unwrap(), [events[1].clone(), events[3].clone()]);
    assert!(store.events(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_timeline_pages_through_one_key_newest_first() {
    let (_dir, store) = store().await;
    let events: Vec<Event> = (0..10)
        .map(|i| login(i, if i % 2 == 0 { "198.51.100.1" } else { "203.0.113.9" }, &format!("user{}", i % 3)))
        .collect();
    append(&store, &events).await;
    let query = |key_type, key: &str, before, limit| TimelineQuery { key_type, key: key.into(), before, limit };

    let page = store.timeline(&query(KeyType::Ip, "198.51.100.1", None, 3)).await.unwrap();
    let seqs: Vec<u64> = page.events.iter().map(|e| e.seq).collect();
    assert_eq!((seqs, page.next), (vec![9, 7, 5], Some(5)));
    assert_eq!(page.events[0].event, events[8]);
    let rest = store.timeline(&query(KeyType::Ip, "198.51.100.1", page.next, 3)).await.unwrap();
    assert_eq!((rest.events.iter().map(|e| e.seq).collect::<Vec<_>>(), rest.next), (vec![3, 1], None));

    let by_user = store.timeline(&query(KeyType::User, "sub-user1", None, 100)).await.unwrap();
    assert_eq!(by_user.events.iter().map(|e| e.seq).collect::<Vec<_>>(), [8, 5, 2]);
    let by_account = store.timeline(&query(KeyType::Account, "user2", None, 100)).await.unwrap();
    assert_eq!(by_account.events.len(), 3);
    assert!(store.timeline(&query(KeyType::Ip, "' OR 1=1 --", None, 100)).await.unwrap().events.is_empty());
    assert_eq!(store.timeline(&query(KeyType::Ip, "198.51.100.1", Some(1), 10)).await.unwrap().events.len(), 0);
}

#[tokio::test]
async fn a_timeline_page_reads_a_bounded_window() {
    let (_dir, store) = store().await;
    // The one event of the key, then more records than a page scans.
    let mut events = vec![login(0, "192.0.2.77", "rare")];
    events.extend((1..=TIMELINE_SCAN as i64 + 5).map(|i| login(i, "198.51.100.1", "busy")));
    append(&store, &events).await;
    let query = TimelineQuery { key_type: KeyType::Ip, key: "192.0.2.77".into(), before: None, limit: 10 };
    let first = store.timeline(&query).await.unwrap();
    assert!(first.events.is_empty(), "the window of the newest records does not reach the rare key");
    let next = first.next.expect("more log below");
    let second = store.timeline(&TimelineQuery { before: Some(next), ..query }).await.unwrap();
    assert_eq!((second.events.len(), second.events[0].seq, second.next), (1, 1, None));
}

#[tokio::test]
async fn standing_blocks_are_the_applied_unended_not_undone_ones() {
    let (_dir, store) = store().await;
    let now = Timestamp::from_secs(200);
    for record in [
        action("a1", "al1", "r", ActionKind::Block, ActionStatus::Applied, Some(500)),
        action("a2", "al2", "r", ActionKind::Block, ActionStatus::Applied, Some(150)), // ended
        action("a3", "al3", "r", ActionKind::Block, ActionStatus::Observed, Some(500)), // observe-only
        action("a4", "al4", "r", ActionKind::Block, ActionStatus::Failed, Some(500)),
        action("a5", "al5", "r", ActionKind::Block, ActionStatus::Applied, Some(500)), // undone below
        action("a6", "al6", "r", ActionKind::Record, ActionStatus::Applied, None),
    ] {
        assert!(store.claim_action(&record, now).await.unwrap());
    }
    store.undo_action("a5", now).await.unwrap().unwrap().unwrap();
    let blocks = store.standing_blocks(now).await.unwrap();
    let ids: Vec<&str> = blocks.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids, ["a1"]);
    assert_eq!(blocks[0].target, argus_model::BlockTarget::Ip("203.0.113.7".into()));
    assert_eq!(blocks[0].until, Timestamp::from_secs(500));
}
