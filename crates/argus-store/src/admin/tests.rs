use argus_model::{RevocationScope, Timestamp};
use argus_oauth::admin::{AdminStore, DeviceRecord};
use argus_oauth::{ClientRegistration, ConsentGrant, IssuerStore, UserRecord};

use crate::Store;

fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(s)
}

const NOW: i64 = 1000;

/// Users `u1`, `u2`; apps `app`, `other`; sessions `s1` (u1 on device d1), `s2` (u1 on d2), `s3` (u2 on d1); families
/// `f1` (u1, app, s1), `f2` (u1, other, s2), `f3` (u2, app, s3), `f4` (u1, app, s2). Each family has one refresh
/// token whose access token `j-<family>` is live, and `f1` an older one whose access token has expired.
async fn fixture() -> Store {
    let s = Store::in_memory().await.unwrap();
    for sub in ["u1", "u2"] {
        let user =
            UserRecord { sub: sub.into(), username: format!("name-{sub}"), password_hash: "h".into(), disabled: false };
        assert!(s.insert_user(&user, t(0)).await.unwrap());
    }
    for id in ["app", "other"] {
        let client = ClientRegistration {
            client_id: id.into(),
            name: id.into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            ..ClientRegistration::default()
        };
        s.upsert_client(&client, t(0)).await.unwrap();
        s.record_consent(&ConsentGrant {
            sub: "u1".into(),
            client_id: id.into(),
            scope: "openid".into(),
            granted_at: t(0),
        })
        .await
        .unwrap();
    }
    for (device, cookie) in [("d1", "c1"), ("d2", "c2")] {
        let d = DeviceRecord {
            device_id: device.into(),
            cookie_hash: cookie.into(),
            created_at: t(0),
            expires_at: t(5000),
        };
        s.insert_device(&d).await.unwrap();
    }
    for (sid, sub, device) in [("s1", "u1", "d1"), ("s2", "u1", "d2"), ("s3", "u2", "d1")] {
        sqlx::query("INSERT INTO sessions (sid, cookie_hash, sub, auth_time, expires_at) VALUES ($1, $2, $3, 0, $4)")
            .bind(sid)
            .bind(format!("cookie-{sid}"))
            .bind(sub)
            .bind(t(5000).as_millis())
            .execute(s.pool())
            .await
            .unwrap();
        s.attach_device(sid, device).await.unwrap();
    }
    for (family, sub, client, sid) in
        [("f1", "u1", "app", "s1"), ("f2", "u1", "other", "s2"), ("f3", "u2", "app", "s3"), ("f4", "u1", "app", "s2")]
    {
        add_family(&s, family, sub, client, sid).await;
    }
    add_token(&s, "f1", "old-f1", "j-old-f1", 900).await;
    s
}

async fn add_family(s: &Store, family: &str, sub: &str, client: &str, sid: &str) {
    sqlx::query(
        "INSERT INTO refresh_families (family_id, client_id, sub, sid, created_at, expires_at) VALUES ($1, $2, $3, $4, 0, $5)",
    )
    .bind(family)
    .bind(client)
    .bind(sub)
    .bind(sid)
    .bind(t(9000).as_millis())
    .execute(s.pool())
    .await
    .unwrap();
    add_token(s, family, &format!("rt-{family}"), &format!("j-{family}"), 1300).await;
}

async fn add_token(s: &Store, family: &str, hash: &str, jti: &str, access_expires: i64) {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, sub, sid, scope, created_at, expires_at, \
         access_jti, access_expires_at) \
         SELECT $1, family_id, client_id, sub, sid, 'openid', 0, $2, $3, $4 FROM refresh_families WHERE family_id = $5",
    )
    .bind(hash)
    .bind(t(9000).as_millis())
    .bind(jti)
    .bind(t(access_expires).as_millis())
    .bind(family)
    .execute(s.pool())
    .await
    .unwrap();
}

async fn revoked_families(s: &Store) -> Vec<String> {
    sqlx::query_scalar("SELECT family_id FROM refresh_families WHERE revoked_at IS NOT NULL ORDER BY family_id")
        .fetch_all(s.pool())
        .await
        .unwrap()
}

/// The sessions still live at `NOW`.
async fn sessions(s: &Store) -> Vec<String> {
    sqlx::query_scalar("SELECT sid FROM sessions WHERE expires_at > $1 ORDER BY sid")
        .bind(t(NOW).as_millis())
        .fetch_all(s.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn families_inherit_the_device_of_their_session() {
    let s = fixture().await;
    assert_eq!(s.session_device("s1").await.unwrap().as_deref(), Some("d1"));
    assert_eq!(s.family_device("f1").await.unwrap().as_deref(), Some("d1"), "inserted after the session's device");
    assert_eq!(s.family_device("f4").await.unwrap().as_deref(), Some("d2"));
    // A family written before the device was known gets it when the device is attached.
    sqlx::query("INSERT INTO sessions (sid, cookie_hash, sub, auth_time, expires_at) VALUES ('s9', 'c9', 'u2', 0, 1)")
        .execute(s.pool())
        .await
        .unwrap();
    add_family(&s, "f9", "u2", "app", "s9").await;
    assert_eq!(s.family_device("f9").await.unwrap(), None);
    s.attach_device("s9", "d2").await.unwrap();
    assert_eq!(s.family_device("f9").await.unwrap().as_deref(), Some("d2"));
    assert_eq!(s.session_device("nope").await.unwrap(), None);
}

#[tokio::test]
async fn each_scope_revokes_its_families_sessions_and_consents_only() {
    struct Case {
        scope: RevocationScope,
        families: &'static [&'static str],
        sessions_left: &'static [&'static str],
        consents_removed: u64,
        live: &'static [&'static str],
    }
    let all_sessions: &[&str] = &["s1", "s2", "s3"];
    let cases = [
        Case {
            scope: RevocationScope::Token { jti: "j-f1".into() },
            families: &[],
            sessions_left: all_sessions,
            consents_removed: 0,
            live: &[],
        },
        Case {
            scope: RevocationScope::Session { sid: "s2".into() },
            families: &["f2", "f4"],
            sessions_left: &["s1", "s3"],
            consents_removed: 0,
            live: &["j-f2", "j-f4"],
        },
        Case {
            scope: RevocationScope::Family { family: "f1".into() },
            families: &["f1"],
            sessions_left: all_sessions,
            consents_removed: 0,
            live: &["j-f1"],
        },
        Case {
            scope: RevocationScope::User { sub: "u1".into() },
            families: &["f1", "f2", "f4"],
            sessions_left: &["s3"],
            consents_removed: 0,
            live: &["j-f1", "j-f2", "j-f4"],
        },
        Case {
            scope: RevocationScope::Client { client_id: "app".into() },
            families: &["f1", "f3", "f4"],
            sessions_left: all_sessions,
            consents_removed: 0,
            live: &["j-f1", "j-f3", "j-f4"],
        },
        Case {
            scope: RevocationScope::Grant { sub: "u1".into(), client_id: "app".into() },
            families: &["f1", "f4"],
            sessions_left: all_sessions,
            consents_removed: 1,
            live: &["j-f1", "j-f4"],
        },
        Case {
            scope: RevocationScope::Device { device: "d1".into() },
            families: &["f1", "f3"],
            sessions_left: &["s2"],
            consents_removed: 0,
            live: &["j-f1", "j-f3"],
        },
    ];
    for case in cases {
        let s = fixture().await;
        let effects = s.revoke_scope(&case.scope, t(NOW)).await.unwrap();
        let scope = &case.scope;
        assert_eq!(revoked_families(&s).await, case.families, "{scope:?}");
        assert_eq!(effects.families_revoked, case.families.len() as u64, "{scope:?}");
        assert_eq!(sessions(&s).await, case.sessions_left, "{scope:?}");
        assert_eq!(effects.sessions_ended, (3 - case.sessions_left.len()) as u64, "{scope:?}");
        assert_eq!(effects.consents_removed, case.consents_removed, "{scope:?}");
        let mut live: Vec<&str> = effects.live_accesses.iter().map(|a| a.jti.as_str()).collect();
        live.sort_unstable();
        assert_eq!(live, case.live, "{scope:?}: expired access tokens are left out");

        // Again: idempotent, nothing more to revoke.
        let again = s.revoke_scope(&case.scope, t(NOW + 1)).await.unwrap();
        assert_eq!((again.families_revoked, again.sessions_ended, again.consents_removed), (0, 0, 0), "{scope:?}");
    }
}

#[tokio::test]
async fn grant_revocation_removes_only_that_consent() {
    let s = fixture().await;
    s.revoke_scope(&RevocationScope::Grant { sub: "u1".into(), client_id: "app".into() }, t(NOW)).await.unwrap();
    assert!(s.consent("u1", "app").await.unwrap().is_none());
    assert!(s.consent("u1", "other").await.unwrap().is_some());
}

#[tokio::test]
async fn users_are_created_once_listed_and_updated() {
    let s = fixture().await;
    let dup = UserRecord { sub: "new".into(), username: "name-u1".into(), password_hash: "h".into(), disabled: false };
    assert!(!s.insert_user(&dup, t(1)).await.unwrap(), "a taken user name is refused");
    let names: Vec<String> = s.users(None, 10).await.unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(names, ["name-u1", "name-u2"]);
    // A page at a time, by sub.
    let subs = |v: Vec<UserRecord>| v.into_iter().map(|u| u.sub).collect::<Vec<_>>();
    assert_eq!(subs(s.users(None, 1).await.unwrap()), ["u1"]);
    assert_eq!(subs(s.users(Some("u1"), 1).await.unwrap()), ["u2"]);
    assert!(s.users(Some("u2"), 1).await.unwrap().is_empty());

    assert!(s.update_user("u1", Some("h2"), None, t(2)).await.unwrap());
    let u1 = s.user_by_sub("u1").await.unwrap().unwrap();
    assert_eq!((u1.password_hash.as_str(), u1.disabled), ("h2", false));
    assert!(s.update_user("u1", None, Some(true), t(3)).await.unwrap());
    let u1 = s.user_by_sub("u1").await.unwrap().unwrap();
    assert_eq!((u1.password_hash.as_str(), u1.disabled), ("h2", true), "only the given field changes");
    assert!(!s.update_user("ghost", None, Some(true), t(3)).await.unwrap());
}

#[tokio::test]
async fn devices_are_found_by_cookie_until_they_expire() {
    let s = fixture().await;
    assert_eq!(s.touch_device("c1", t(100), t(6000)).await.unwrap().as_deref(), Some("d1"));
    assert_eq!(s.touch_device("c1", t(6000), t(9000)).await.unwrap(), None, "expired at 6000");
    assert_eq!(s.touch_device("unknown", t(100), t(6000)).await.unwrap(), None);
    assert_eq!(s.purge_expired_devices(t(6000)).await.unwrap(), 2);
    assert_eq!(s.touch_device("c2", t(100), t(6000)).await.unwrap(), None);
}

/// Rows for `sub` (signed in as `sid`, on `device`) in every table that names a user or links to one, tagged by
/// `sub` so each user's rows can be told apart.
async fn seed_everything(s: &Store, sub: &str, sid: &str, device: &str) {
    let statements = [
        "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, code_challenge, scope, sub, sid, \
         auth_time, expires_at) VALUES ('code-' || $1, 'app', 'https://app.example/cb', 'c', 'openid', $1, $2, 0, 1)",
        "INSERT INTO second_factor_waits (handle_hash, sub, expires_at) VALUES ('wait-' || $1, $1, 1)",
        "INSERT INTO totp_credentials (sub, secret, created_at) VALUES ($1, 'ab', 0)",
        "INSERT INTO totp_recovery_codes (sub, code_hash) VALUES ($1, 'rc-' || $1)",
        "INSERT INTO passkeys (id, sub, credential_id, passkey, name, created_at) \
         VALUES ('pk-' || $1, $1, 'cred-' || $1, '{}', 'key', 0)",
        "INSERT INTO passkey_ceremonies (key_hash, sub, state, expires_at) VALUES ('cer-' || $1, $1, '{}', 1)",
        "INSERT INTO watch_notifications (id, sub, alert_id, action_id, time_ms, message) \
         VALUES ('wn-' || $1, $1, 'a', 'b', 0, 'm')",
        "INSERT INTO user_devices (sub, device_id, first_seen_at, last_seen_at) VALUES ($1, $3, 0, 0)",
        "INSERT INTO notices (id, sub, kind, created_at, body) VALUES ('n-' || $1, $1, 'new_device', 0, '{}')",
        "INSERT INTO outbox (id, notice_id, channel, target, payload, created_at, next_attempt_at) \
         VALUES ('o-' || $1, 'n-' || $1, 'webhook', 'https://hook.example', '{}', 0, 0)",
        "INSERT INTO used_links (id, used_at, expires_at) VALUES ('n-' || $1, 0, 1)",
        "INSERT INTO passkey_sign_ins (sid, auth_time, expires_at) VALUES ($2, 0, 1)",
        "INSERT INTO step_up_demands (id, sid, not_before, expires_at) VALUES ('sud-' || $1, $2, 0, 1)",
    ];
    for sql in statements {
        sqlx::query(sql).bind(sub).bind(sid).bind(device).execute(s.pool()).await.unwrap();
    }
}

/// How many rows of `table` are `sub`'s (signed in as `sid`): by its `sub` column, or by what `seed_everything`
/// linked them to.
async fn rows_of(s: &Store, table: &str, sub: &str, sid: &str) -> i64 {
    let sql = match table {
        "passkey_sign_ins" | "step_up_demands" => format!("SELECT COUNT(*) FROM {table} WHERE sid = $2"),
        "outbox" => "SELECT COUNT(*) FROM outbox WHERE id = 'o-' || $1".to_owned(),
        "used_links" => "SELECT COUNT(*) FROM used_links WHERE id = 'n-' || $1".to_owned(),
        _ => format!("SELECT COUNT(*) FROM {table} WHERE sub = $1"),
    };
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(sub).bind(sid).fetch_one(s.pool()).await.unwrap()
}

#[tokio::test]
async fn every_table_with_a_sub_column_is_handled_by_user_deletion() {
    let s = Store::in_memory().await.unwrap();
    let schema: Vec<String> = sqlx::query_scalar(
        "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) c \
         WHERE m.type = 'table' AND c.name = 'sub' ORDER BY m.name",
    )
    .fetch_all(s.pool())
    .await
    .unwrap();
    let mut handled: Vec<&str> = super::delete::BY_SUB.iter().map(|(table, _)| *table).collect();
    handled.sort_unstable();
    assert_eq!(schema, handled, "a table naming users must be emptied of a deleted user's rows (admin/delete.rs)");
}

#[tokio::test]
async fn deleting_a_user_removes_all_that_is_theirs_and_nothing_else() {
    let s = fixture().await;
    seed_everything(&s, "u1", "s1", "d2").await;
    sqlx::query("INSERT INTO user_devices (sub, device_id, first_seen_at, last_seen_at) VALUES ('u1', 'd1', 0, 0)")
        .execute(s.pool())
        .await
        .unwrap();
    seed_everything(&s, "u2", "s3", "d1").await;
    let tables: Vec<&str> =
        super::delete::BY_LINK.iter().chain(super::delete::BY_SUB).map(|(table, _)| *table).collect();
    let mut before_u2 = Vec::new();
    for table in &tables {
        assert!(rows_of(&s, table, "u1", "s1").await > 0, "the fixture gives u1 rows in {table}");
        before_u2.push(rows_of(&s, table, "u2", "s3").await);
    }

    assert!(s.rows_naming_user("u1").await.unwrap().len() >= 10);
    let deleted = s.delete_user("u1").await.unwrap().expect("u1 exists");
    assert_eq!(s.rows_naming_user("u1").await.unwrap(), []);
    let removed: std::collections::HashMap<&str, u64> = deleted.removed.iter().copied().collect();
    assert_eq!(removed.get("users"), Some(&1));
    assert_eq!(removed.get("refresh_families"), Some(&3));
    assert_eq!(removed.get("devices"), Some(&1), "d2 was u1's alone; d1 is u2's too");
    for (table, before) in tables.iter().zip(before_u2) {
        assert_eq!(rows_of(&s, table, "u1", "s1").await, 0, "{table} still holds u1's rows");
        assert_eq!(rows_of(&s, table, "u2", "s3").await, before, "{table}: u2's rows are untouched");
    }
    let devices: Vec<String> =
        sqlx::query_scalar("SELECT device_id FROM devices ORDER BY device_id").fetch_all(s.pool()).await.unwrap();
    assert_eq!(devices, ["d1"]);

    // Gone: a second deletion finds nothing; the name is free and a new user with it starts with nothing.
    assert_eq!(s.delete_user("u1").await.unwrap(), None);
    assert_eq!(s.delete_user("ghost").await.unwrap(), None);
    let again =
        UserRecord { sub: "u1b".into(), username: "name-u1".into(), password_hash: "h".into(), disabled: false };
    assert!(s.insert_user(&again, t(NOW)).await.unwrap());
    for table in &tables[4..] {
        let rows = if *table == "users" { 1 } else { 0 };
        assert_eq!(rows_of(&s, table, "u1b", "s1").await, rows, "{table}");
    }
}

#[tokio::test]
async fn a_passkey_reset_removes_the_users_passkeys_and_ceremonies_only() {
    let s = fixture().await;
    seed_everything(&s, "u1", "s1", "d2").await;
    seed_everything(&s, "u2", "s3", "d1").await;
    assert_eq!(s.delete_passkeys("u1").await.unwrap(), 1);
    assert_eq!(
        (rows_of(&s, "passkeys", "u1", "s1").await, rows_of(&s, "passkey_ceremonies", "u1", "s1").await),
        (0, 0)
    );
    assert_eq!(
        (rows_of(&s, "passkeys", "u2", "s3").await, rows_of(&s, "passkey_ceremonies", "u2", "s3").await),
        (1, 1)
    );
    assert_eq!(rows_of(&s, "totp_credentials", "u1", "s1").await, 1, "other factors stay");
    assert_eq!(s.delete_passkeys("u1").await.unwrap(), 0, "idempotent");
}
