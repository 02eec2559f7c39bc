use std::time::Duration;

use argus_model::{Activity, Timestamp};
use argus_oauth::admin::{AdminStore, DeviceRecord};
use argus_oauth::notice::{
    Channel, Delivery, DeviceNovelty, DeviceSighting, NoticeBody, NoticeRecord, NoticeStore, device_label,
};
use argus_oauth::{IssuerStore, SessionRecord, UserRecord};

use crate::Store;

fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(s)
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36";

/// Users `u1`, `u2`; devices `d1`, `d2`; a session `s-<user>-<device>` for each pair.
async fn fixture() -> Store {
    let s = Store::in_memory().await.unwrap();
    for sub in ["u1", "u2"] {
        let user =
            UserRecord { sub: sub.into(), username: format!("name-{sub}"), password_hash: "h".into(), disabled: false };
        assert!(s.insert_user(&user, t(0)).await.unwrap());
        for device in ["d1", "d2"] {
            let sid = format!("s-{sub}-{device}");
            let session = SessionRecord {
                sid: sid.clone(),
                cookie_hash: format!("cookie-{sid}"),
                sub: sub.into(),
                auth_time: t(0),
                acr: "urn:argus:acr:pwd".into(),
                expires_at: t(10_000),
            };
            s.insert_session(&session).await.unwrap();
        }
    }
    for device in ["d1", "d2"] {
        let d = DeviceRecord {
            device_id: device.into(),
            cookie_hash: format!("c-{device}"),
            created_at: t(0),
            expires_at: t(100_000),
        };
        s.insert_device(&d).await.unwrap();
    }
    s
}

fn sighting(sub: &str, device: &str, ua: &str, now: i64) -> DeviceSighting {
    DeviceSighting {
        device_id: device.into(),
        sub: sub.into(),
        sid: format!("s-{sub}-{device}"),
        ip: Some("192.0.2.7".into()),
        user_agent: Some(ua.into()),
        ua: device_label(Some(ua)),
        now: t(now),
    }
}

#[tokio::test]
async fn a_device_is_new_once_per_user_and_a_changed_browser_is_suspicious() {
    let s = fixture().await;
    let first = s.record_device_sign_in(&sighting("u1", "d1", FIREFOX, 10)).await.unwrap();
    assert_eq!(first, DeviceNovelty::New { first_for_user: true });
    assert_eq!(s.record_device_sign_in(&sighting("u1", "d1", FIREFOX, 20)).await.unwrap(), DeviceNovelty::Known);
    // Another user on the same browser: new to that user.
    let other = s.record_device_sign_in(&sighting("u2", "d1", FIREFOX, 30)).await.unwrap();
    assert_eq!(other, DeviceNovelty::New { first_for_user: true });
    let second = s.record_device_sign_in(&sighting("u1", "d2", FIREFOX, 40)).await.unwrap();
    assert_eq!(second, DeviceNovelty::New { first_for_user: false });
    // The d1 cookie, now from Chrome on Windows.
    let changed = s.record_device_sign_in(&sighting("u1", "d1", CHROME, 50)).await.unwrap();
    assert_eq!(changed, DeviceNovelty::Changed { previous_label: "Firefox on Linux".into() });

    let devices = s.user_devices("u1").await.unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0].device_id, "d1", "most recently seen first");
    assert_eq!(devices[0].label.as_deref(), Some("Chrome on Windows"));
    assert_eq!((devices[0].first_seen_at, devices[0].last_seen_at), (t(10), t(50)));
    assert_eq!(devices[0].last_ip.as_deref(), Some("192.0.2.7"));

    let sessions = s.user_sessions("u1", t(60)).await.unwrap();
    let s1 = sessions.iter().find(|v| v.sid == "s-u1-d1").unwrap();
    assert_eq!((s1.created_at, s1.last_used_at), (Some(t(10)), Some(t(50))));
    s.touch_session("s-u1-d1", t(70)).await.unwrap();
    let sessions = s.user_sessions("u1", t(80)).await.unwrap();
    assert_eq!(sessions[0].sid, "s-u1-d1");
    assert_eq!(sessions[0].last_used_at, Some(t(70)));
}

fn delivery(id: &str, notice: Option<&str>, at: i64) -> Delivery {
    Delivery {
        id: id.into(),
        notice_id: notice.map(str::to_owned),
        channel: Channel::Webhook,
        target: "http://127.0.0.1:9/hook".into(),
        payload: "{}".into(),
        created_at: t(at),
        attempts: 0,
        next_attempt_at: t(at),
    }
}

#[tokio::test]
async fn notices_and_their_deliveries_are_claimed_retried_and_purged() {
    let s = fixture().await;
    let notice = NoticeRecord {
        id: "n1".into(),
        sub: "u1".into(),
        kind: Activity::NewDevice,
        created_at: t(10),
        read_at: None,
        device_id: Some("d1".into()),
        body: NoticeBody { summary: "New sign-in".into(), ip: Some("192.0.2.7".into()), ..NoticeBody::default() },
    };
    s.insert_notice(&notice, &[delivery("o1", Some("n1"), 10)]).await.unwrap();
    assert_eq!(s.notices("u1", 10).await.unwrap(), vec![notice.clone()]);
    assert!(s.notices("u2", 10).await.unwrap().is_empty());
    assert!(!s.mark_notice_read("u2", "n1", t(11)).await.unwrap(), "only the user's own notice");
    assert!(s.mark_notice_read("u1", "n1", t(11)).await.unwrap());
    assert_eq!(s.notices("u1", 10).await.unwrap()[0].read_at, Some(t(11)));

    // Not due yet, then claimed once: a second claim within the lease gets nothing.
    assert!(s.claim_deliveries(t(9), t(39), 10).await.unwrap().is_empty());
    let claimed = s.claim_deliveries(t(10), t(40), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].id.as_str(), claimed[0].attempts), ("o1", 0));
    assert!(s.claim_deliveries(t(20), t(50), 10).await.unwrap().is_empty());
    // Failed: due again at the retry time, with the attempt counted.
    s.delivery_failed("o1", 1, Some(t(15)), "HTTP 500", t(12)).await.unwrap();
    let again = s.claim_deliveries(t(15), t(45), 10).await.unwrap();
    assert_eq!(again[0].attempts, 1);
    s.delivery_succeeded("o1", t(16)).await.unwrap();
    assert!(s.claim_deliveries(t(100), t(130), 10).await.unwrap().is_empty(), "delivered rows stay delivered");

    // Given up: never claimed again.
    s.enqueue(&[delivery("o2", None, 20)]).await.unwrap();
    s.claim_deliveries(t(20), t(21), 10).await.unwrap();
    s.delivery_failed("o2", 5, None, "refused", t(21)).await.unwrap();
    assert!(s.claim_deliveries(t(1000), t(1030), 10).await.unwrap().is_empty());

    // Purge: finished deliveries and old notices.
    let day = Duration::from_secs(86_400);
    assert_eq!(s.purge_notices(t(17), t(5)).await.unwrap(), 1, "o1 only");
    assert_eq!(s.purge_notices(t(22), t(11).plus(day)).await.unwrap(), 2, "o2 and n1");
    assert!(s.notices("u1", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn email_addresses() {
    let s = fixture().await;
    assert_eq!(s.user_email("u1").await.unwrap(), None);
    assert!(s.set_user_email("u1", Some("u1@example.test")).await.unwrap());
    assert_eq!(s.user_email("u1").await.unwrap().as_deref(), Some("u1@example.test"));
    assert!(!s.set_user_email("nobody", Some("x@example.test")).await.unwrap());
    assert!(s.set_user_email("u1", None).await.unwrap());
    assert_eq!(s.user_email("u1").await.unwrap(), None);
}
