//! The `argus` binary's library half: configuration, wiring and the demo, so integration tests can start the same
//! process in-process.
#![forbid(unsafe_code)]

pub mod app;
pub mod cli_admin;
pub mod cli_watch;
pub mod config;
pub mod demo;
pub mod demo_client;
pub mod keys;

pub use app::{Running, UpOptions, start, start_with_clock};
pub use config::Config;

/// The lines printed when Argus is up: what runs where and a first command to try. Tests and scripts parse the
/// part lines (`^\s+(issuer|gate|watch|demo-api)\s+(http://\S+)`), so keep that shape.
pub fn banner(r: &Running) -> String {
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    line(format!("Argus is up{}.", if r.demo.is_some() { " with the demo" } else { "" }));
    line(format!(
        "  issuer    {:<28} OpenID discovery: {}/.well-known/openid-configuration",
        r.issuer_url, r.issuer_url
    ));
    line(format!("  gate      {:<28} the protected API", r.gate_url));
    match &r.watch_url {
        Some(url) => line(format!("  watch     {url:<28} alerts: {url}/api/alerts")),
        None => line("  watch     off ([watch] enabled = false): no audit log, no alerts".into()),
    }
    if let Some(url) = &r.metrics_url {
        line(format!("  metrics   {url:<28} Prometheus"));
    }
    if let Some(d) = &r.demo {
        line(format!("  demo-api  {:<28} the sample API itself (OpenAPI: {}/openapi.yaml)", d.url, d.url));
        let names: Vec<&str> = d.users.iter().map(|(n, _)| n.as_str()).collect();
        line(format!("  users     {}   password: {}", names.join(", "), d.password));
        line(format!(
            "  admin     {} (client credentials, scope argus:admin), secret: {}",
            cli_admin::BOOTSTRAP_CLIENT_ID,
            d.admin_secret
        ));
        line(format!(
            "  app       {} (public client, PKCE S256), redirect http://127.0.0.1/callback (any port)",
            demo::DEMO_CLIENT_ID
        ));
        line(String::new());
        line("Try:".into());
        line(format!("  curl -i {}/accounts            # 401: the gate wants an access token", r.gate_url));
        line(format!(
            "  TOKEN=$(argus demo token --issuer {} --password '{}')   # sign in as alice via the login form",
            r.issuer_url, d.password
        ));
        line(format!("  curl -H \"Authorization: Bearer $TOKEN\" {}/accounts     # 200: alice's accounts", r.gate_url));
        if let Some(url) = &r.watch_url {
            line(format!(
                "  ARGUS_ADMIN_CLIENT_SECRET='{}' argus alerts list --issuer {} --watch {url}   # what watch saw",
                d.admin_secret, r.issuer_url
            ));
        }
    }
    s
}
