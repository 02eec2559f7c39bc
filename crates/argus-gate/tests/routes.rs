//! Routes by host, and routes with several upstreams, end to end: the real gate on 127.0.0.1:0 in front of echo
//! upstreams (and ports where nothing listens).

mod support;

use std::time::Duration;

use argus_gate::{AuthMode, GateConfig, RouteConfig};
use argus_testkit::{EchoUpstream, closed_port_url};
use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{Harness, Reply};

/// A public route (no token needed) named `name`.
fn open_route(name: &str, host: Option<&str>, prefix: &str, upstreams: &[&str]) -> RouteConfig {
    let (upstream, upstreams) = match upstreams {
        [one] => ((*one).to_owned(), Vec::new()),
        many => (String::new(), many.iter().map(|u| (*u).to_owned()).collect()),
    };
    RouteConfig {
        name: name.into(),
        host: host.map(str::to_owned),
        prefix: prefix.into(),
        upstream,
        upstreams,
        auth: AuthMode::None,
        ..RouteConfig::default()
    }
}

/// An HTTP/1.1 call with this `Host` header.
async fn call_with_host(h: &Harness, method: &str, host: &str, path: &str, body: &'static str) -> Reply {
    let request = Request::builder().method(method).uri(h.url(path)).header("host", host);
    h.client.send(request.body(Full::from(body)).unwrap()).await
}

/// An HTTP/2 (prior knowledge) call whose `:authority` is `authority`, over a connection to the gate.
async fn h2_call(h: &Harness, authority: &str, path: &str) -> StatusCode {
    let stream = tokio::net::TcpStream::connect(h.gate.trim_start_matches("http://")).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request = Request::get(format!("http://{authority}{path}")).body(Full::<Bytes>::default()).unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}

/// An HTTP/1.1 call that sends no `Host` header at all.
async fn call_without_host(h: &Harness, path: &str) -> Reply {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).set_host(false).build_http();
    let response = client.request(Request::get(h.url(path)).body(Full::default()).unwrap()).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply { status, headers, body }
}

/// A POST whose body the gate streams (the route has no spec), so it can be sent upstream only once.
async fn streamed_post(h: &Harness) -> Reply {
    let request = Request::post(h.url("/p")).header("content-type", "text/plain");
    h.client.send(request.body(Full::from("streamed once")).unwrap()).await
}

async fn route_of_next_call(h: &mut Harness) -> Option<String> {
    h.next_call().await.1.route
}

#[tokio::test]
async fn the_host_picks_the_route_over_http1_and_http2() {
    let (exact, wild) = (EchoUpstream::start().await, EchoUpstream::start().await);
    let (exact_url, wild_url) = (exact.url().to_owned(), wild.url().to_owned());
    let mut h = Harness::start_with(move |config, any_url| {
        config.routes = vec![
            open_route("any", None, "/", &[any_url]),
            open_route("exact", Some("api.example.test"), "/", &[&exact_url]),
            open_route("wild", Some("*.example.test"), "/", &[&wild_url]),
        ];
    })
    .await;

    // Case and port do not matter; the upstream hears of the host the caller named.
    assert_eq!(call_with_host(&h, "GET", "API.Example.test:7480", "/a", "").await.status, StatusCode::OK);
    assert_eq!(route_of_next_call(&mut h).await.as_deref(), Some("exact"));
    let seen = exact.last_request().unwrap();
    assert_eq!(seen.uri, "/a");
    assert_eq!(seen.headers["x-forwarded-host"], "API.Example.test:7480");

    assert_eq!(call_with_host(&h, "GET", "eu.shop.example.test", "/b", "").await.status, StatusCode::OK);
    assert_eq!(route_of_next_call(&mut h).await.as_deref(), Some("wild"));
    // The bare domain is not covered by its wildcard; hosts nobody names and calls without a host go to `any`.
    for host in ["example.test", "other.test"] {
        assert_eq!(call_with_host(&h, "GET", host, "/c", "").await.status, StatusCode::OK);
        assert_eq!(route_of_next_call(&mut h).await.as_deref(), Some("any"), "{host}");
    }
    assert_eq!(call_without_host(&h, "/d").await.status, StatusCode::OK);
    assert_eq!(route_of_next_call(&mut h).await.as_deref(), Some("any"));

    // HTTP/2 names the host in `:authority`.
    assert_eq!(h2_call(&h, "www.example.test:1234", "/e").await, StatusCode::OK);
    assert_eq!(route_of_next_call(&mut h).await.as_deref(), Some("wild"));
    assert_eq!(wild.last_request().unwrap().headers["x-forwarded-host"], "www.example.test:1234");
    assert_eq!(h2_call(&h, "api.example.test", "/f").await, StatusCode::OK);
    assert_eq!(route_of_next_call(&mut h).await.as_deref(), Some("exact"));
    assert_eq!((exact.hits(), wild.hits(), h.upstream.hits()), (2, 2, 3));
}

#[tokio::test]
async fn with_host_routes_only_other_hosts_and_hostless_calls_have_no_route() {
    let h = Harness::start_with(|config, url| {
        config.routes = vec![
            open_route("shop", Some("shop.test"), "/api", &[url]),
            open_route("shops", Some("*.shop.test"), "/", &[url]),
        ];
    })
    .await;
    assert_eq!(call_with_host(&h, "GET", "shop.test", "/api/x", "").await.status, StatusCode::OK);
    // shop.test has routes of its own: the wildcard's `/` does not serve what they leave out.
    call_with_host(&h, "GET", "shop.test", "/other", "").await.assert_problem(404, "no-route");
    call_with_host(&h, "GET", "127.0.0.1", "/api/x", "").await.assert_problem(404, "no-route");
    call_without_host(&h, "/api/x").await.assert_problem(404, "no-route");
    assert_eq!(h2_call(&h, "shop.test", "/other").await, StatusCode::NOT_FOUND);
    assert_eq!(h2_call(&h, "a.shop.test", "/other").await, StatusCode::OK);
    assert_eq!(h.upstream.hits(), 2);
}

#[tokio::test]
async fn calls_take_turns_across_upstreams() {
    let (one, two) = (EchoUpstream::start().await, EchoUpstream::start().await);
    let urls = [one.url().to_owned(), two.url().to_owned()];
    let h = Harness::start_with(move |config, _| {
        config.routes = vec![open_route("pool", None, "/", &[&urls[0], &urls[1]])];
    })
    .await;
    for i in 0..10 {
        let method = if i % 3 == 0 { "POST" } else { "GET" };
        assert_eq!(call_with_host(&h, method, "any.test", "/x", "{}").await.status, StatusCode::OK);
    }
    assert_eq!((one.hits(), two.hits(), h.upstream.hits()), (5, 5, 0));
}

#[tokio::test]
async fn a_dead_upstream_is_skipped_for_its_cool_down_and_replayable_calls_move_on() {
    let dead = closed_port_url();
    let h = Harness::start_with(move |config, live| {
        config.routes = vec![open_route("pool", None, "/", &[&dead, live])];
    })
    .await;
    // The dead one's turn: a call without a body is sent to the live one instead.
    assert_eq!(h.get("/first", None).await.status, StatusCode::OK);
    assert_eq!(h.upstream.hits(), 1);
    // While it cools down, its turn goes to the live one, even for a body that could not be sent twice.
    for _ in 0..3 {
        assert_eq!(streamed_post(&h).await.status, StatusCode::OK);
    }
    assert_eq!(h.upstream.last_request().unwrap().body, "streamed once");

    // After the cool-down it is tried again; a streamed body is not resent, so that call fails...
    h.clock.advance(Duration::from_secs(11));
    let mut statuses = Vec::new();
    for _ in 0..2 {
        statuses.push(streamed_post(&h).await.status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::BAD_GATEWAY]);
    // ... and it sits out another cool-down.
    for _ in 0..3 {
        assert_eq!(streamed_post(&h).await.status, StatusCode::OK);
    }
    assert_eq!(h.upstream.hits(), 1 + 3 + 1 + 3);
}

#[tokio::test]
async fn every_upstream_down_is_502() {
    let (a, b) = (closed_port_url(), closed_port_url());
    let h = Harness::start_with(move |config, _| {
        config.routes = vec![open_route("pool", None, "/", &[&a, &b])];
    })
    .await;
    for _ in 0..3 {
        h.get("/x", None).await.assert_problem(502, "upstream-unavailable");
    }
    assert_eq!(h.upstream.hits(), 0);
}

const SPEC: &str = r#"
openapi: 3.1.0
info: {title: notes, version: "1"}
paths:
  /notes:
    post:
      operationId: addNote
      security: []
      requestBody:
        required: true
        content:
          application/json:
            schema: {type: object, required: [text], properties: {text: {type: string}}}
      responses: {"200": {description: ok}}
"#;

#[tokio::test]
async fn a_buffered_body_is_sent_again_to_the_next_upstream() {
    let dir = std::env::temp_dir().join(format!("argus-gate-routes-{}", argus_model::id::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("notes.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let dead = closed_port_url();
    let h = Harness::start_with(move |config, live| {
        config.routes = vec![RouteConfig { openapi: Some(spec), ..open_route("notes", None, "/", &[&dead, live]) }];
    })
    .await;
    // The first call is the dead one's turn: the gate validated (so buffered) the body and resends it.
    let request = Request::post(h.url("/notes")).header("content-type", "application/json");
    let reply = h.client.send(request.body(Full::from(r#"{"text":"hi"}"#)).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let seen = h.upstream.last_request().unwrap();
    assert_eq!((seen.method.as_str(), &seen.body[..]), ("POST", &br#"{"text":"hi"}"#[..]));
    assert_eq!(h.upstream.hits(), 1);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_reload_brings_host_routes_and_upstreams_into_force() {
    let other = EchoUpstream::start().await;
    let h = Harness::start().await;
    assert_eq!(call_with_host(&h, "GET", "new.test", "/public/x", "").await.status, StatusCode::OK);
    let mut config = h.config.clone();
    config.routes.push(open_route("new", Some("new.test"), "/", &[h.upstream.url(), other.url()]));
    h.handle.reload(&config).unwrap();
    for _ in 0..2 {
        assert_eq!(call_with_host(&h, "GET", "new.test", "/public/x", "").await.status, StatusCode::OK);
    }
    assert_eq!((h.upstream.hits(), other.hits()), (2, 1), "new.test now takes turns over two upstreams");
    assert_eq!(call_with_host(&h, "GET", "old.test", "/public/x", "").await.status, StatusCode::OK);
    assert_eq!(h.upstream.hits(), 3);
}

#[test]
fn config_check_names_the_route_and_what_is_wrong() {
    let check = |routes: Vec<RouteConfig>| {
        GateConfig { routes, ..GateConfig::default() }.check().expect_err("refused").to_string()
    };
    let msg = check(vec![open_route("shop", Some("shop_test:80"), "/", &["http://127.0.0.1:1"])]);
    assert!(msg.contains("\"shop\"") && msg.contains("\"shop_test:80\"") && msg.contains("host"), "{msg}");
    let both =
        RouteConfig { upstreams: vec!["http://127.0.0.1:2".into()], ..open_route("r", None, "/", &["http://a"]) };
    assert!(check(vec![both]).contains("exclude each other"));
    let msg = check(vec![open_route("pool", None, "/", &["http://127.0.0.1:1", "https://127.0.0.1:2"])]);
    assert!(msg.contains("\"pool\"") && msg.contains("https://127.0.0.1:2"), "{msg}");
    let msg = check(vec![
        open_route("a", Some("x.test"), "/api", &["http://127.0.0.1:1"]),
        open_route("b", Some("X.TEST"), "/api/", &["http://127.0.0.1:1"]),
    ]);
    assert!(msg.contains("\"b\"") && msg.contains("\"a\"") && msg.contains("x.test"), "{msg}");
}
