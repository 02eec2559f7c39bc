use super::*;

fn route(name: &str, prefix: &str) -> RouteConfig {
    RouteConfig {
        name: name.into(),
        prefix: prefix.into(),
        upstream: "http://127.0.0.1:9".into(),
        auth: AuthMode::Argus,
        require: vec![],
        ..RouteConfig::default()
    }
}

fn rule(methods: &[&str], path: &str, scopes: &[&str]) -> RuleConfig {
    RuleConfig {
        methods: methods.iter().map(|m| (*m).to_owned()).collect(),
        path: path.into(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn matched<'t>(table: &'t RouteTable, path: &str) -> Option<&'t str> {
    table.match_route(None, path).map(Route::name)
}

fn on_host(name: &str, host: &str, prefix: &str) -> RouteConfig {
    RouteConfig { host: Some(host.into()), ..route(name, prefix) }
}

fn served<'t>(table: &'t RouteTable, host: &str, path: &str) -> Option<&'t str> {
    table.match_route(Some(host), path).map(Route::name)
}

#[test]
fn longest_prefix_wins_on_segment_boundaries() {
    let table = RouteTable::new(&[route("root", "/"), route("api", "/api"), route("v1", "/api/v1/")]).unwrap();
    assert_eq!(matched(&table, "/"), Some("root"));
    assert_eq!(matched(&table, "/apix"), Some("root"));
    assert_eq!(matched(&table, "/api"), Some("api"));
    assert_eq!(matched(&table, "/api/v2"), Some("api"));
    assert_eq!(matched(&table, "/api/v1"), Some("v1"));
    assert_eq!(matched(&table, "/api/v1/users/7"), Some("v1"));
    assert_eq!(matched(&table, "/api/v10"), Some("api"));
    assert_eq!(table.routes()[2].prefix(), "/api/v1", "trailing slash dropped");
}

#[test]
fn no_route_without_a_matching_prefix() {
    let table = RouteTable::new(&[route("api", "/api")]).unwrap();
    assert_eq!(matched(&table, "/"), None);
    assert_eq!(matched(&table, "/ap"), None);
    assert_eq!(matched(&table, "/apifoo/x"), None);
    assert!(RouteTable::new(&[]).unwrap().match_route(None, "/").is_none());
}

#[test]
fn first_matching_rule_wins_and_methods_filter() {
    let mut r = route("demo", "/");
    r.require = vec![
        rule(&["get"], "/accounts", &["accounts:read"]),
        rule(&["POST", "PUT"], "/accounts", &["accounts:write"]),
        rule(&[], "/accounts/admin", &["admin"]),
        rule(&[], "/transfers", &["transfers:read", "transfers:write"]),
    ];
    let table = RouteTable::new(&[r]).unwrap();
    let demo = table.match_route(None, "/accounts").unwrap();
    assert_eq!(demo.required_scopes("GET", "/accounts"), ["accounts:read"]);
    assert_eq!(demo.required_scopes("HEAD", "/accounts/7"), ["accounts:read"], "HEAD is covered by GET");
    assert_eq!(demo.required_scopes("PUT", "/accounts/7"), ["accounts:write"]);
    // The earlier /accounts rule shadows the later, longer one for GET: first match, not longest.
    assert_eq!(demo.required_scopes("GET", "/accounts/admin"), ["accounts:read"]);
    assert_eq!(demo.required_scopes("DELETE", "/accounts/admin"), ["admin"]);
    assert_eq!(demo.required_scopes("DELETE", "/accounts"), [] as [&str; 0]);
    assert_eq!(demo.required_scopes("GET", "/accountsx"), [] as [&str; 0]);
    assert_eq!(demo.required_scopes("get", "/accounts"), [] as [&str; 0], "wire methods are case-sensitive");
    assert_eq!(demo.required_scopes("PATCH", "/transfers"), ["transfers:read", "transfers:write"]);
    assert_eq!(demo.rules()[0].methods(), ["GET"]);
}

#[test]
fn missing_scopes_are_listed_in_rule_order() {
    let required: Vec<String> = vec!["a".into(), "b:c".into(), "d".into()];
    assert_eq!(missing_scopes(&required, "d  a"), ["b:c"]);
    assert_eq!(missing_scopes(&required, ""), ["a", "b:c", "d"]);
    assert!(missing_scopes(&required, "openid a b:c d").is_empty());
    assert_eq!(missing_scopes(&required, "ab:c b"), ["a", "b:c", "d"], "whole tokens only");
    assert!(missing_scopes(&[], "").is_empty());
}

#[test]
fn bad_configs_are_refused_with_the_route_named() {
    let bad_prefix = |p: &str| RouteTable::new(&[route("r", p)]).unwrap_err();
    for p in ["", "api", "/api/../x", "/a//b", "/a%2Fb", "/a?x", "/a#x", "/a;x", "/a%41"] {
        assert!(matches!(bad_prefix(p), PolicyError::BadPath { .. }), "{p:?}");
    }
    assert_eq!(
        RouteTable::new(&[route("a", "/x"), route("a", "/y")]).unwrap_err(),
        PolicyError::DuplicateName("a".into())
    );
    assert!(matches!(
        RouteTable::new(&[route("a", "/x"), route("b", "/x/")]).unwrap_err(),
        PolicyError::DuplicatePrefix { .. }
    ));
    assert_eq!(RouteTable::new(&[route(" ", "/")]).unwrap_err(), PolicyError::EmptyName { index: 0 });

    let with_rule = |r: RuleConfig, auth: AuthMode| {
        let mut c = route("r", "/");
        c.auth = auth;
        c.require = vec![r];
        RouteTable::new(&[c])
    };
    assert!(matches!(
        with_rule(rule(&["GE T"], "/", &[]), AuthMode::Argus).unwrap_err(),
        PolicyError::BadMethod { .. }
    ));
    for scope in ["", "a b", "say\"hi", "back\\slash", "é"] {
        assert!(
            matches!(with_rule(rule(&[], "/", &[scope]), AuthMode::Argus).unwrap_err(), PolicyError::BadScope { .. }),
            "{scope:?}"
        );
    }
    assert!(matches!(
        with_rule(rule(&[], "/", &["a"]), AuthMode::None).unwrap_err(),
        PolicyError::RulesWithoutAuth { .. }
    ));
    let mut blind = route("r", "/");
    blind.responses = crate::config::ResponseMode::Block;
    assert!(matches!(RouteTable::new(&[blind]).unwrap_err(), PolicyError::BlockWithoutSpec { .. }));
    let msg = with_rule(rule(&[], "/x/../y", &[]), AuthMode::Argus).unwrap_err().to_string();
    assert!(msg.contains("\"r\"") && msg.contains("/x/../y"), "{msg}");
}

#[test]
fn toml_shape_of_the_demo_config() {
    #[derive(Debug, serde::Deserialize)]
    struct File {
        routes: Vec<RouteConfig>,
    }
    let file: File = toml::from_str(
        r#"
        [[routes]]
        name = "demo"
        prefix = "/"
        upstream = "http://127.0.0.1:7401"
        auth = "argus"
        [[routes.require]]
        methods = ["GET"]
        path = "/accounts"
        scopes = ["accounts:read"]

        [[routes]]
        name = "health"
        prefix = "/health"
        upstream = "http://127.0.0.1:7401"
        auth = "none"
        "#,
    )
    .unwrap();
    assert_eq!(file.routes[0].require[0], rule(&["GET"], "/accounts", &["accounts:read"]));
    assert_eq!(file.routes[1].auth, AuthMode::None);
    let table = RouteTable::new(&file.routes).unwrap();
    assert_eq!(table.match_route(None, "/health/live").map(Route::auth), Some(AuthMode::None));

    let unknown = toml::from_str::<File>("[[routes]]\nname='x'\nprefix='/'\nupstream='u'\nscope=['a']\n");
    assert!(unknown.unwrap_err().to_string().contains("scope"));
    let auth = toml::from_str::<File>("[[routes]]\nname='x'\nprefix='/'\nupstream='u'\nauth='basic'\n");
    assert!(auth.is_err());
    let defaulted = toml::from_str::<File>("[[routes]]\nname='x'\nprefix='/'\nupstream='u'\n").unwrap();
    assert_eq!(defaulted.routes[0].auth, AuthMode::Argus, "secure by default");
    assert_eq!(defaulted.routes[0].responses, crate::config::ResponseMode::Log);
    let block = toml::from_str::<File>("[[routes]]\nname='x'\nprefix='/'\nupstream='u'\nresponses='block'\n");
    assert_eq!(block.unwrap().routes[0].responses, crate::config::ResponseMode::Block);
    assert!(toml::from_str::<File>("[[routes]]\nname='x'\nprefix='/'\nupstream='u'\nresponses='warn'\n").is_err());
}

#[test]
fn the_host_picks_its_routes_then_the_longest_prefix_wins() {
    let table = RouteTable::new(&[
        route("any", "/"),
        route("any-api", "/api"),
        on_host("exact", "API.example.com", "/"),
        on_host("exact-v1", "api.example.com", "/v1"),
        on_host("wild", "*.example.com", "/"),
        on_host("wild-deep", "*.eu.example.com", "/v1"),
        on_host("other", "other.test", "/only"),
    ])
    .unwrap();
    // Exact beats wildcard, compared without port and case-insensitively; the prefix decides within the host.
    assert_eq!(served(&table, "api.example.com", "/v1/x"), Some("exact-v1"));
    assert_eq!(served(&table, "Api.Example.COM:8443", "/v2"), Some("exact"));
    assert_eq!(served(&table, "api.example.com.", "/"), Some("exact"), "a fully qualified name is the same host");
    // A wildcard covers one or more labels, never the bare domain.
    assert_eq!(served(&table, "www.example.com", "/v1"), Some("wild"));
    assert_eq!(served(&table, "a.b.example.com:80", "/"), Some("wild"));
    assert_eq!(served(&table, "example.com", "/api"), Some("any-api"));
    assert_eq!(served(&table, "badexample.com", "/"), Some("any"));
    // The longest wildcard suffix wins, and its routes alone serve: no fallback to the shorter wildcard's `/`.
    assert_eq!(served(&table, "x.eu.example.com", "/v1/a"), Some("wild-deep"));
    assert_eq!(served(&table, "x.eu.example.com", "/v2"), None);
    // A host with routes of its own never reaches the host-less ones.
    assert_eq!(served(&table, "other.test", "/only/x"), Some("other"));
    assert_eq!(served(&table, "other.test", "/api"), None);
    // Hosts nobody names, and missing or unusable hosts, get the routes without a host.
    assert_eq!(served(&table, "unknown.test", "/api/x"), Some("any-api"));
    assert_eq!(matched(&table, "/api"), Some("any-api"));
    for unusable in ["", ":80", "[::1]:80", "user@api.example.com", "api.example.com:x", "a_b.example.com", "é.test"] {
        assert_eq!(served(&table, unusable, "/"), Some("any"), "{unusable:?}");
    }
    assert_eq!(table.routes()[2].host().as_deref(), Some("api.example.com"), "lower-cased");
    assert_eq!(table.routes()[4].host().as_deref(), Some("*.example.com"));
    assert_eq!(table.routes()[0].host(), None);
}

#[test]
fn with_host_routes_only_a_request_without_a_usable_host_has_no_route() {
    let table = RouteTable::new(&[on_host("a", "a.test", "/"), on_host("b", "*.b.test", "/")]).unwrap();
    assert_eq!(served(&table, "a.test:7480", "/x"), Some("a"));
    assert_eq!(served(&table, "x.b.test", "/x"), Some("b"));
    assert_eq!(served(&table, "b.test", "/x"), None);
    assert_eq!(served(&table, "[::1]", "/x"), None);
    assert_eq!(matched(&table, "/x"), None);
}

#[test]
fn bad_hosts_and_duplicate_host_prefixes_are_refused() {
    for bad in [
        "",
        "*",
        "*.",
        "**.example.com",
        "api.*.com",
        "*example.com",
        "api.example.com:443",
        "api.example.com.",
        "-api.example.com",
        "api-.example.com",
        "a..b",
        "http://api.example.com",
        "api.example.com/x",
        "[::1]",
        "é.example",
        &format!("{}.com", "a".repeat(64)),
    ] {
        let err = RouteTable::new(&[on_host("r", bad, "/")]).unwrap_err();
        assert_eq!(err, PolicyError::BadHost { route: "r".into(), host: bad.into() }, "{bad:?}");
    }
    let msg = RouteTable::new(&[on_host("shop", "*.x", "/"), on_host("r", "a b", "/")]).unwrap_err().to_string();
    assert!(msg.contains("\"r\"") && msg.contains("\"a b\""), "{msg}");

    // The same prefix on different hosts (or with and without a host) is fine; on the same host it is not.
    assert!(RouteTable::new(&[route("a", "/"), on_host("b", "x.test", "/"), on_host("c", "*.x.test", "/")]).is_ok());
    assert_eq!(
        RouteTable::new(&[on_host("a", "X.test", "/api"), on_host("b", "x.TEST", "/api/")]).unwrap_err(),
        PolicyError::DuplicateHostPrefix {
            route: "b".into(),
            other: "a".into(),
            host: "x.test".into(),
            prefix: "/api".into()
        }
    );
}

#[test]
fn exactly_one_of_upstream_and_upstreams() {
    let two = |u: &str, us: &[&str]| RouteConfig {
        upstream: u.into(),
        upstreams: us.iter().map(|s| (*s).to_owned()).collect(),
        ..route("r", "/")
    };
    let table = RouteTable::new(&[two("", &["http://a:1", "http://b:1"])]).unwrap();
    assert_eq!(table.routes()[0].upstreams(), ["http://a:1", "http://b:1"]);
    let table = RouteTable::new(&[two("http://a:1", &[])]).unwrap();
    assert_eq!(table.routes()[0].upstreams(), ["http://a:1"]);
    assert_eq!(RouteTable::new(&[two("", &[])]).unwrap_err(), PolicyError::NoUpstream { route: "r".into() });
    assert_eq!(
        RouteTable::new(&[two("http://a:1", &["http://b:1"])]).unwrap_err(),
        PolicyError::BothUpstreams { route: "r".into() }
    );
    assert_eq!(
        RouteTable::new(&[two("", &["http://a:1", "http://b:1", "http://a:1"])]).unwrap_err(),
        PolicyError::DuplicateUpstream { route: "r".into(), url: "http://a:1".into() }
    );
}

#[test]
fn toml_shape_of_hosts_and_upstreams() {
    #[derive(Debug, serde::Deserialize)]
    struct File {
        routes: Vec<RouteConfig>,
    }
    let file: File = toml::from_str(
        r#"
        [[routes]]
        name = "shop"
        host = "*.shop.example"
        prefix = "/api"
        upstreams = ["http://10.0.0.1:8080", "http://10.0.0.2:8080"]
        "#,
    )
    .unwrap();
    assert_eq!(file.routes[0].host.as_deref(), Some("*.shop.example"));
    assert!(file.routes[0].upstream.is_empty());
    let table = RouteTable::new(&file.routes).unwrap();
    assert_eq!(table.match_route(Some("eu.shop.example"), "/api/x").map(Route::upstreams).map(<[_]>::len), Some(2));
    let neither = toml::from_str::<File>("[[routes]]\nname='x'\nprefix='/'\n").unwrap();
    assert!(RouteTable::new(&neither.routes).unwrap_err().to_string().contains("`upstream` or `upstreams`"));
}
