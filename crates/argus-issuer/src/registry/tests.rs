use argus_oauth::IssuerStore;
use argus_store::Store;

use super::*;

fn t(secs: i64) -> Timestamp {
    Timestamp::from_secs(secs)
}

const TTL: Duration = Duration::from_secs(5);

fn client(id: &str) -> ClientRegistration {
    ClientRegistration {
        client_id: id.into(),
        name: "App".into(),
        redirect_uris: vec!["http://127.0.0.1/callback".into()],
        allowed_scopes: vec!["openid".into()],
        ..ClientRegistration::default()
    }
}

async fn store_with(ids: &[&str]) -> Store {
    let store = Store::in_memory().await.unwrap();
    for id in ids {
        store.upsert_client(&client(id), t(0)).await.unwrap();
    }
    store
}

async fn name_of(r: &Registry, store: &Store, id: &str, now: Timestamp) -> Option<String> {
    r.client(store, id, now).await.unwrap().map(|c| c.name.clone())
}

async fn rename(store: &Store, id: &str, name: &str) {
    store.upsert_client(&ClientRegistration { name: name.into(), ..client(id) }, t(0)).await.unwrap();
}

#[tokio::test]
async fn a_client_is_read_once_per_lifetime_and_at_once_after_forget() {
    let store = store_with(&["app"]).await;
    let r = Registry::new(TTL);
    assert_eq!(name_of(&r, &store, "app", t(0)).await.as_deref(), Some("App"));

    // Changed behind the registry's back (another process): the copy serves until it expires.
    rename(&store, "app", "Renamed").await;
    assert_eq!(name_of(&r, &store, "app", t(4)).await.as_deref(), Some("App"), "still the cached copy");
    assert_eq!(name_of(&r, &store, "app", t(5)).await.as_deref(), Some("Renamed"), "expired: read again");

    // Changed through this process: forgotten at once.
    rename(&store, "app", "Again").await;
    r.forget_client("app");
    assert_eq!(name_of(&r, &store, "app", t(5)).await.as_deref(), Some("Again"));
}

#[tokio::test]
async fn an_unknown_client_is_not_remembered_as_unknown() {
    let store = store_with(&[]).await;
    let r = Registry::new(TTL);
    assert!(r.client(&store, "late", t(0)).await.unwrap().is_none());
    store.upsert_client(&client("late"), t(0)).await.unwrap();
    assert_eq!(name_of(&r, &store, "late", t(0)).await.as_deref(), Some("App"), "created meanwhile: found");
}

#[tokio::test]
async fn zero_lifetime_reads_the_store_every_time() {
    let store = store_with(&["app"]).await;
    let r = Registry::new(Duration::ZERO);
    assert_eq!(name_of(&r, &store, "app", t(0)).await.as_deref(), Some("App"));
    rename(&store, "app", "Renamed").await;
    assert_eq!(name_of(&r, &store, "app", t(0)).await.as_deref(), Some("Renamed"));
}

#[tokio::test]
async fn a_user_is_enabled_until_disabled_and_forgotten() {
    let store = store_with(&[]).await;
    let sub = store.upsert_user("sub-1", "alice", "$argon2id$x", t(0)).await.unwrap();
    let r = Registry::new(TTL);
    assert!(r.user_enabled(&store, &sub, t(0)).await.unwrap());
    assert!(!r.user_enabled(&store, "nobody", t(0)).await.unwrap(), "an unknown user is not enabled");

    argus_oauth::admin::AdminStore::update_user(&store, &sub, None, Some(true), t(1)).await.unwrap();
    assert!(r.user_enabled(&store, &sub, t(1)).await.unwrap(), "the cached flag, until it expires");
    r.forget_user(&sub);
    assert!(!r.user_enabled(&store, &sub, t(1)).await.unwrap(), "forgotten: disabled at once");
    // A disabled user is cached as disabled too; enabling is a change like any other.
    argus_oauth::admin::AdminStore::update_user(&store, &sub, None, Some(false), t(2)).await.unwrap();
    assert!(!r.user_enabled(&store, &sub, t(2)).await.unwrap());
    assert!(r.user_enabled(&store, &sub, t(6)).await.unwrap(), "expired: read again");
}

#[test]
fn a_read_that_overlaps_a_forget_is_not_kept() {
    let mut map = Bounded::new(10);
    let Err(before) = map.fresh("k", t(0)) else { panic!("empty map") };
    // The admin changes the record and forgets it while the old value is being read from the store.
    map.forget("k");
    map.insert("k", "old", before, t(0), t(5));
    assert!(map.fresh("k", t(0)).is_err(), "the stale read was dropped");
    let Err(after) = map.fresh("k", t(0)) else { panic!("empty map") };
    map.insert("k", "new", after, t(0), t(5));
    assert_eq!(map.fresh("k", t(0)), Ok("new"));
}

#[test]
fn a_full_map_drops_expired_entries_first_then_everything() {
    let mut map = Bounded::new(2);
    map.insert("a", 1, 0, t(0), t(5));
    map.insert("b", 2, 0, t(3), t(8));
    // At 6, "a" has expired: it makes room and "b" stays.
    map.insert("c", 3, 0, t(6), t(11));
    assert_eq!((map.fresh("a", t(6)), map.fresh("b", t(6)), map.fresh("c", t(6))), (Err(0), Ok(2), Ok(3)));
    // Nothing has expired at 7: everything goes, and the new entry is the only one.
    map.insert("d", 4, 0, t(7), t(12));
    assert_eq!((map.fresh("b", t(7)), map.fresh("c", t(7)), map.fresh("d", t(7))), (Err(0), Err(0), Ok(4)));
    assert_eq!(map.entries.len(), 1);
    // Replacing a key already there never evicts.
    map.insert("d", 5, 0, t(7), t(12));
    map.insert("e", 6, 0, t(7), t(12));
    map.insert("e", 7, 0, t(7), t(12));
    assert_eq!((map.fresh("d", t(7)), map.fresh("e", t(7))), (Ok(5), Ok(7)));
}
