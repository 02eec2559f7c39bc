//! `argus.toml`: one file, one table per part. Every table and field has a safe default, so an empty file is a
//! valid configuration; an unknown or mistyped key is refused with its name (serde `deny_unknown_fields`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use argus_gate::GateConfig;
use argus_issuer::IssuerConfig;
use argus_watch::WatchConfig;

/// The whole configuration file.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where Argus keeps its data (SQLite database, keys). `--data-dir` overrides it. Default `./argus-data`.
    pub data_dir: Option<PathBuf>,
    /// The token server.
    pub issuer: IssuerConfig,
    /// The API enforcement point.
    pub gate: GateConfig,
    /// The observer.
    pub watch: WatchConfig,
    /// The sample API started by `argus up --demo`.
    pub demo: DemoConfig,
    /// The Prometheus metrics endpoint.
    pub metrics: MetricsConfig,
    /// Where the issuer's notices to users go besides the account page and the log: a Standard Webhooks endpoint,
    /// e-mail over SMTP (`[notify.smtp]`). Default: neither.
    pub notify: argus_issuer::NotifyConfig,
}

/// `[metrics]`: where `GET /metrics` (Prometheus text format) is served, on a listener of its own so that it can
/// stay on a private address while the gate faces the world.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of the metrics listener. Default `127.0.0.1:7499`.
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 7499)) }
    }
}

/// `[demo]`: the sample API of `argus up --demo`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Address of the sample API. Default `127.0.0.1:7401`.
    pub listen: SocketAddr,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 7401)) }
    }
}

/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "argus-data";

impl Config {
    /// Parse a configuration from TOML text. `origin` names the file in error messages.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        let config: Self =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{origin}: {}", e.to_string().trim_end()))?;
        config.validate().with_context(|| format!("{origin}: invalid configuration"))?;
        Ok(config)
    }

    /// Read and parse a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let origin = path.display().to_string();
        let mut config: Self =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{origin}: {}", e.to_string().trim_end()))?;
        // Files the configuration names (OpenAPI specs) are relative to its folder, not to the working directory.
        config.gate.resolve_paths(path.parent().unwrap_or(Path::new(".")));
        config.validate().with_context(|| format!("{origin}: invalid configuration"))?;
        Ok(config)
    }

    /// Checks serde cannot express: URLs that must parse, listeners that must not collide.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, url) in [
            ("issuer.public_url", self.issuer.public_url.as_deref()),
            ("gate.public_url", self.gate.public_url.as_deref()),
            ("gate.issuer", self.gate.issuer.as_deref()),
        ] {
            if let Some(url) = url {
                check_base_url(name, url)?;
            }
        }
        self.issuer.validate().map_err(|e| anyhow::anyhow!("[issuer] {e}"))?;
        self.notify.validate().map_err(|e| anyhow::anyhow!("[notify] {e}"))?;
        self.issuer.check_triggers(&self.notify).map_err(|e| anyhow::anyhow!("[issuer] {e}"))?;
        self.gate.check().map_err(|e| anyhow::anyhow!("[gate] {e}"))?;
        self.watch.validate().map_err(|e| anyhow::anyhow!("[watch] {e}"))?;
        let listeners = [
            ("issuer.listen", self.issuer.listen),
            ("gate.listen", self.gate.listen),
            ("watch.listen", self.watch.listen),
            ("demo.listen", self.demo.listen),
            ("metrics.listen", self.metrics.listen),
        ];
        for (i, (a, addr_a)) in listeners.iter().enumerate() {
            for (b, addr_b) in &listeners[i + 1..] {
                if addr_a == addr_b && addr_a.port() != 0 {
                    bail!("{a} and {b} both listen on {addr_a}");
                }
            }
        }
        Ok(())
    }

    /// The settings of `new` that a running Argus cannot take on (besides the gate's own, which the gate
    /// reports): listeners, the data directory, the issuer, watch and the demo. A reload keeps them as they are.
    pub fn restart_only_changes(&self, new: &Self) -> Vec<&'static str> {
        [
            ("data_dir", self.data_dir != new.data_dir),
            ("[issuer]", self.issuer != new.issuer),
            ("[watch]", self.watch != new.watch),
            ("[demo]", self.demo != new.demo),
            ("[metrics]", self.metrics != new.metrics),
            ("[notify]", self.notify != new.notify),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
    }

    pub fn data_dir(&self, cli: Option<&Path>) -> PathBuf {
        cli.map(Path::to_path_buf).or_else(|| self.data_dir.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }
}

/// An absolute `http` or `https` URL without query or fragment.
fn check_base_url(name: &str, value: &str) -> anyhow::Result<()> {
    let ok = (value.starts_with("http://") || value.starts_with("https://"))
        && !value.contains(['?', '#', ' '])
        && value.len() > "http://".len();
    if !ok {
        bail!("{name} = {value:?} is not an absolute http(s) URL without query or fragment");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_valid_with_design_ports() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c.issuer.listen.port(), 7400);
        assert_eq!(c.gate.listen.port(), 7480);
        assert_eq!(c.watch.listen.port(), 7490);
        assert_eq!(c.demo.listen.port(), 7401);
        assert_eq!(c.metrics.listen, "127.0.0.1:7499".parse().unwrap());
        assert_eq!(c.data_dir(None), PathBuf::from("argus-data"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::parse("[issuer]\nlisten = \"127.0.0.1:1\"\naccess_token_tll_secs = 5\n", "argus.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("access_token_tll_secs"), "{err}");
        assert!(err.contains("argus.toml"), "{err}");
        let err = Config::parse("[gaet]\n", "t").unwrap_err().to_string();
        assert!(err.contains("gaet"), "{err}");
        let err = Config::parse("[gate]\nlisten = 7480\n", "t").unwrap_err().to_string();
        assert!(err.contains("listen"), "{err}");
    }

    #[test]
    fn a_reload_names_what_only_a_restart_changes() {
        let running = Config::parse("", "t").unwrap();
        let new = Config::parse(
            "[issuer]\naccess_token_ttl_secs = 60\n[metrics]\nlisten = \"127.0.0.1:0\"\n\
             [gate]\nmax_body_bytes = 5\n",
            "t",
        )
        .unwrap();
        assert_eq!(running.restart_only_changes(&new), ["[issuer]", "[metrics]"], "the gate reports its own");
        assert!(running.restart_only_changes(&running.clone()).is_empty());
    }

    #[test]
    fn notify_is_checked() {
        let ok = "[notify]\nwebhook_url = \"https://hooks.example/argus\"\n\
            webhook_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\
            [notify.smtp]\nhost = \"127.0.0.1\"\nport = 2525\nfrom = \"Argus <argus@example.com>\"\ntls = \"none\"\n";
        let c = Config::parse(ok, "t").unwrap();
        assert_eq!(c.notify.smtp.as_ref().map(|s| s.port), Some(Some(2525)));
        let err = Config::parse("[notify]\nwebhook_url = \"https://x.example\"\n", "t").unwrap_err();
        assert!(format!("{err:#}").contains("webhook_secret"), "{err:#}");
        let err = Config::parse("[notify.smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\ntls = \"ssl\"\n", "t").unwrap_err();
        assert!(format!("{err:#}").contains("tls"), "{err:#}");
    }

    #[test]
    fn semantic_errors_are_named() {
        let err = Config::parse("[gate]\nissuer = \"ftp://x\"\n", "t").unwrap_err();
        assert!(format!("{err:#}").contains("gate.issuer"), "{err:#}");
        let err = Config::parse("[gate]\nlisten = \"127.0.0.1:7400\"\n", "t").unwrap_err();
        assert!(format!("{err:#}").contains("both listen"), "{err:#}");
        let err = Config::parse("[issuer]\naccess_token_ttl_secs = 0\n", "t").unwrap_err();
        assert!(format!("{err:#}").contains("access_token_ttl_secs"), "{err:#}");
        let routes = "[[gate.routes]]\nname = \"a\"\nprefix = \"/\"\nupstream = \"http://127.0.0.1:1\"\n";
        let err = Config::parse(&format!("{routes}{routes}"), "t").unwrap_err();
        assert!(format!("{err:#}").contains("[gate]"), "{err:#}");
        let err = Config::parse("[watch.detectors.failed_login.per_ip]\nthreshold = 5\n", "t").unwrap_err();
        assert!(format!("{err:#}").contains("leak"), "{err:#}");
    }
}
