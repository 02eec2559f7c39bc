//! `argus up --demo`: the sample API, its users and its app, registered in the real store through the issuer's own
//! provisioning functions.

use anyhow::Context;
use argus_gate::RouteConfig;
use argus_oauth::ClientRegistration;
use argus_store::Store;
use serde::Deserialize;

/// The demo app's client id.
pub const DEMO_CLIENT_ID: &str = "demo-app";
/// The demo users.
pub const DEMO_USERS: [&str; 2] = ["alice", "bob"];
/// Scopes the demo app may ask for.
pub const DEMO_SCOPES: &str = "openid profile accounts:read transfers:read transfers:write account";

/// What the demo set up, for the banner and for tests.
#[derive(Clone)]
pub struct DemoInfo {
    pub url: String,
    pub password: String,
    /// `(username, sub)` of each demo user.
    pub users: Vec<(String, String)>,
    pub api: argus_demo::DemoApi,
    /// The secret of the admin client `argus-admin`, new at every start (shown in the banner only).
    pub admin_secret: String,
}

/// Create (or reset) the demo users and app, and seed the sample API with accounts owned by those users.
pub async fn provision(
    store: &Store,
    url: &str,
    password: Option<String>,
    clock: std::sync::Arc<dyn argus_model::Clock>,
) -> anyhow::Result<DemoInfo> {
    let now = clock.now();
    // 12 random bytes as hex: 96 bits, easy to paste, and never starting with '-' (a CLI flag).
    let password = password
        .unwrap_or_else(|| argus_model::id::random_bytes(12).iter().map(|b| format!("{b:02x}")).collect::<String>());
    let mut users = Vec::new();
    for name in DEMO_USERS {
        let sub = argus_issuer::provision::ensure_user(store, name, &password, now)
            .await
            .with_context(|| format!("cannot provision demo user {name}"))?;
        users.push((name.to_owned(), sub));
    }
    argus_issuer::provision::ensure_client(store, demo_client()).await.context("cannot provision the demo client")?;
    let demo_users: Vec<argus_demo::DemoUser> = users
        .iter()
        .map(|(username, sub)| argus_demo::DemoUser { sub: sub.clone(), username: username.clone() })
        .collect();
    let api = argus_demo::seed_with_clock(&demo_users, clock);
    let admin_secret = crate::cli_admin::bootstrap_admin_client(store, crate::cli_admin::BOOTSTRAP_CLIENT_ID, now)
        .await
        .context("cannot provision the admin client")?;
    Ok(DemoInfo { url: url.to_owned(), password, users, api, admin_secret })
}

fn demo_client() -> ClientRegistration {
    ClientRegistration {
        client_id: DEMO_CLIENT_ID.to_owned(),
        name: "Argus demo app".to_owned(),
        // Loopback redirects: any port (RFC 8252 §7.3), as native apps and CLI tools use.
        redirect_uris: vec!["http://127.0.0.1/callback".to_owned(), "http://[::1]/callback".to_owned()],
        allowed_scopes: DEMO_SCOPES.split(' ').map(str::to_owned).collect(),
        public: true,
        ..ClientRegistration::default()
    }
}

/// The file name, in the data directory, of the demo API's OpenAPI description the gate loads.
pub const DEMO_OPENAPI_FILE: &str = "demo-openapi.yaml";

/// Write the demo API's OpenAPI description into `data_dir` for the gate; returns its path.
pub fn write_openapi(data_dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let path = data_dir.join(DEMO_OPENAPI_FILE);
    std::fs::write(&path, argus_demo::OPENAPI_YAML).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// `demo.toml`: the demo's gate routes and watch responses.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoFile {
    gate: DemoGate,
    watch: DemoWatch,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoGate {
    routes: Vec<RouteConfig>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoWatch {
    responses: Vec<argus_detect::ResponseRuleConfig>,
}

/// The gate routes for the demo API at `demo_url`, described by the spec at `openapi`, from `demo.toml`.
pub fn gate_routes(demo_url: &str, openapi: &std::path::Path) -> anyhow::Result<Vec<RouteConfig>> {
    // A TOML basic string: escape what it cannot hold as is (Windows paths, quotes).
    let openapi = openapi.display().to_string().replace('\\', "\\\\").replace('"', "\\\"");
    let text = include_str!("demo.toml").replace("{demo_url}", demo_url).replace("{openapi}", &openapi);
    let file: DemoFile = toml::from_str(&text).context("demo.toml")?;
    Ok(file.gate.routes)
}

/// What watch does about alerts in the demo, from `demo.toml` (used when the configuration has no responses).
pub fn watch_responses() -> anyhow::Result<Vec<argus_detect::ResponseRuleConfig>> {
    let text = include_str!("demo.toml").replace("{demo_url}", "http://127.0.0.1").replace("{openapi}", "demo.yaml");
    let file: DemoFile = toml::from_str(&text).context("demo.toml")?;
    Ok(file.watch.responses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_routes_parse() {
        let routes = gate_routes("http://127.0.0.1:7401", std::path::Path::new("/data/demo-openapi.yaml")).unwrap();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].upstream, "http://127.0.0.1:7401");
        assert_eq!(routes[0].openapi.as_deref(), Some(std::path::Path::new("/data/demo-openapi.yaml")));
        assert!(routes[0].require.is_empty() && routes[0].strict);
    }

    #[test]
    fn demo_responses_compile() {
        let responses = watch_responses().unwrap();
        let names: Vec<&str> = responses.iter().map(|r| r.name.as_str()).collect();
        assert!(names.contains(&"decoy-block-ip") && names.contains(&"exfiltration-notify"), "{names:?}");
        argus_detect::Responses::compile(&responses, &[]).unwrap();
    }
}
