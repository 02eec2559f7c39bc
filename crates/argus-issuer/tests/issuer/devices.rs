//! Devices and sessions as users see them: what a session records (user agent, first and last use, the last use
//! written at most once a minute), which sign-ins are on a new device (first on a device for that user, or a known
//! device cookie from another browser or system), and the account activity that becomes events and notices (new
//! device, first grant to an app, a TOTP factor added).

use std::collections::HashMap;
use std::time::Duration;

use argus_model::{Activity, Clock, EventKind};
use argus_oauth::notice::NoticeStore;
use axum::http::header;

use crate::common::{Browser, Issuer, PASSWORD, Resp, USER_AGENT, authorize_path, events, form, hidden_inputs};
use crate::totp::{enrol, password_sign_in};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36";

/// A browser with a user agent of its choosing.
struct Agent {
    ua: &'static str,
    cookies: HashMap<String, String>,
}

impl Agent {
    async fn send(&mut self, i: &Issuer, method: &str, path: &str, body: Option<String>) -> Resp {
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let headers = [
            ("cookie", cookie.as_str()),
            ("user-agent", self.ua),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        let res = i.request(method, path, &headers, body).await;
        for v in res.headers.get_all(header::SET_COOKIE) {
            let (k, v) = v.to_str().unwrap().split(';').next().unwrap().split_once('=').unwrap();
            self.cookies.insert(k.to_owned(), v.to_owned());
        }
        res
    }

    /// Sign `user` in through the login form (and consent), to the redirect with a code.
    async fn sign_in(&mut self, i: &Issuer, user: &str) {
        // `prompt=login`: the login form even when the browser's session is live.
        let page = self.send(i, "GET", &authorize_path(&[("prompt", "login")]), None).await;
        let mut pairs = hidden_inputs(&page.body);
        pairs.extend([("username".to_owned(), user.to_owned()), ("password".to_owned(), PASSWORD.to_owned())]);
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut done = self.send(i, "POST", "/login", Some(form(&refs))).await;
        if done.status == 200 && done.body.contains(r#"action="/consent""#) {
            let mut pairs = hidden_inputs(&done.body);
            pairs.push(("decision".to_owned(), "allow".to_owned()));
            let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            done = self.send(i, "POST", "/consent", Some(form(&refs))).await;
        }
        assert_eq!(done.status, 303, "{}", done.body);
    }
}

async fn notices(i: &Issuer, user: &str) -> Vec<argus_oauth::notice::NoticeRecord> {
    i.store.notices(&i.users[user], 50).await.unwrap()
}

#[tokio::test]
async fn a_known_device_cookie_from_another_browser_is_treated_as_a_new_device() {
    let i = Issuer::start().await;
    let mut firefox = Agent { ua: FIREFOX, cookies: HashMap::new() };
    firefox.sign_in(&i, "alice").await;
    firefox.sign_in(&i, "alice").await;
    let new_devices = |n: &[argus_oauth::notice::NoticeRecord]| {
        n.iter().filter(|n| n.kind == Activity::NewDevice).map(|n| n.body.detail.clone().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(new_devices(&notices(&i, "alice").await), ["first_sign_in"], "the same browser again: no notice");

    // The device cookie alone, copied into another browser on another system.
    let device = firefox.cookies["argus_device"].clone();
    let mut copied = Agent { ua: CHROME, cookies: HashMap::from([("argus_device".to_owned(), device)]) };
    copied.sign_in(&i, "alice").await;
    let all = notices(&i, "alice").await;
    assert_eq!(new_devices(&all), ["browser_changed", "first_sign_in"]);
    assert_eq!(all[0].body.device.as_deref(), Some("Chrome on Windows"));
    assert!(all[0].body.summary.contains("Firefox on Linux"), "{}", all[0].body.summary);
    // Another user on the Firefox browser: new to that user.
    firefox.sign_in(&i, "bob").await;
    assert_eq!(new_devices(&notices(&i, "bob").await), ["first_sign_in"]);
}

#[tokio::test]
async fn sessions_record_their_browser_and_last_use_at_most_once_a_minute() {
    let i = Issuer::start().await;
    let mut b = Browser::default();
    password_sign_in(&i, &mut b, "alice").await;
    let signed_in_at = i.clock.now();
    let sub = &i.users["alice"];
    let sessions = i.store.user_sessions(sub, i.clock.now()).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].user_agent.as_deref(), Some(USER_AGENT));
    assert_eq!((sessions[0].created_at, sessions[0].last_used_at), (Some(signed_in_at), Some(signed_in_at)));
    assert!(sessions[0].device_id.is_some());

    // The session cookie at /authorize is a use; within a minute of the last recorded one it is not written again.
    i.clock.advance(Duration::from_secs(90));
    b.get(&i, &authorize_path(&[])).await;
    let used = i.clock.now();
    i.clock.advance(Duration::from_secs(10));
    b.get(&i, &authorize_path(&[])).await;
    let sessions = i.store.user_sessions(sub, i.clock.now()).await.unwrap();
    assert_eq!(sessions[0].last_used_at, Some(used));
    assert_eq!(sessions[0].created_at, Some(signed_in_at));

    let devices = i.store.user_devices(sub).await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].label.as_deref(), Some("Unknown browser on an unknown system"));
}

#[tokio::test]
async fn first_grants_and_new_factors_are_account_activity_with_notices() {
    let i = Issuer::start().await;
    let mut sub = i.events.subscribe();
    let mut b = Browser::default();
    password_sign_in(&i, &mut b, "alice").await;
    // A second consent to the same app (a new browser of the same user) is no first grant.
    password_sign_in(&i, &mut Browser::default(), "alice").await;
    enrol(&i, &mut b, "alice").await;

    let activities: Vec<(Activity, Option<String>)> = events(&mut sub)
        .await
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Account(a) => {
                assert_eq!(e.principal.sub.as_deref(), Some(i.users["alice"].as_str()));
                Some((a.activity, a.detail.clone()))
            }
            _ => None,
        })
        .collect();
    let kinds: Vec<Activity> = activities.iter().map(|a| a.0).collect();
    assert_eq!(
        kinds,
        [Activity::NewDevice, Activity::FirstGrant, Activity::NewDevice, Activity::FactorAdded],
        "{activities:?}"
    );
    assert_eq!(activities[3].1.as_deref(), Some("totp"));
    let stored: Vec<Activity> = notices(&i, "alice").await.iter().rev().map(|n| n.kind).collect();
    assert_eq!(stored, kinds, "each is told to the user by default");
}
