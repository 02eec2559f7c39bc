//! `[watch]` in `argus.toml`.

use std::net::SocketAddr;
use std::num::NonZeroUsize;

use argus_detect::{ConfigError, DetectorsConfig, ResponseRuleConfig, Responses};
use serde::{Deserialize, Serialize};

use crate::WatchError;

/// `[watch]`: the out-of-band observer. Every key has a default, so the table may be left out.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// Whether `argus up` runs watch. Default `true`. `false` starts no watch: no audit log, no detectors, no watch
    /// API; the events the issuer and gate publish reach no subscriber and are dropped at once. For measuring the
    /// gate without the audit cost (`bench/gate`), not for production: nothing is audited.
    pub enabled: bool,
    /// Address of the watch API (`/api/...`, `/healthz`). Default `127.0.0.1:7490`. Every `/api/...` call needs
    /// an admin token of the issuer (scope `argus:admin`), as the admin API does; `/healthz` is open.
    pub listen: SocketAddr,
    /// Most events taken from the bus and appended to the audit log in one transaction. Default `1024`, at most
    /// `65536`. A lone event is written at once; while events keep coming, a batch starts at most every 5 ms and
    /// holds what arrived meanwhile (a transaction per few events would cost more in hand-offs to SQLite than the
    /// events themselves); a backlog goes in full batches, which is what lets the audit log keep up with bursts.
    pub max_batch: NonZeroUsize,
    /// `[watch.detectors.*]`: which detectors run and their thresholds, e.g.
    /// `[watch.detectors.failed_login.per_ip]` with `threshold = 20` and `leak = "10/min"`.
    pub detectors: DetectorsConfig,
    /// `[[watch.responses]]`: what to do about alerts, in order (see `argus_detect::respond`). Default: none,
    /// alerts are only recorded. E.g. `name = "decoy"`, `when = "alert.attack == 'decoy_hit'"`,
    /// `action = "block"`, `ttl_secs = 3600`.
    pub responses: Vec<ResponseRuleConfig>,
    /// Callers never acted on, though their alerts are recorded: addresses and CIDR ranges (e.g. a NAT shared by
    /// many users), `client:<client_id>`, `user:<sub>`, `account:<user name>`, `session:<sid>`, `token:<jti>`.
    pub allow: Vec<String>,
}

/// The default `watch.listen`.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7490);

/// The default `watch.max_batch`.
pub const DEFAULT_MAX_BATCH: NonZeroUsize = NonZeroUsize::new(1024).unwrap();

/// The largest `watch.max_batch` accepted: beyond it a batch only holds the database's write lock longer.
pub const MAX_BATCH_LIMIT: usize = 65_536;

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: DEFAULT_LISTEN,
            max_batch: DEFAULT_MAX_BATCH,
            detectors: DetectorsConfig::default(),
            responses: Vec::new(),
            allow: Vec::new(),
        }
    }
}

impl WatchConfig {
    /// Checks what serde cannot express (run by [`crate::Watch::start`] too).
    pub fn validate(&self) -> Result<(), WatchError> {
        if self.max_batch.get() > MAX_BATCH_LIMIT {
            return Err(WatchError::Config(ConfigError::new(
                "watch.max_batch",
                format!("must be at most {MAX_BATCH_LIMIT}"),
            )));
        }
        self.detectors.validate()?;
        self.compile_responses().map(drop)
    }

    /// The response rules and allow-list, compiled (a bad `when` is refused here, by `argus config check` too).
    pub fn compile_responses(&self) -> Result<Responses, WatchError> {
        Ok(Responses::compile(&self.responses, &self.allow)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_table_gives_the_documented_defaults() {
        let c: WatchConfig = toml::from_str("").unwrap();
        assert_eq!(c, WatchConfig::default());
        assert!(c.enabled);
        assert_eq!(c.listen.to_string(), "127.0.0.1:7490");
        assert_eq!(c.max_batch.get(), 1024);
        let login = &c.detectors.failed_login;
        assert_eq!((login.per_ip.threshold.get(), login.per_ip.leak.to_string().as_str()), (20, "10/min"));
        assert_eq!((login.per_account.threshold.get(), login.per_account.leak.to_string().as_str()), (10, "6/h"));
        assert_eq!((login.stuffing_accounts.get(), login.max_keys.get()), (5, 10_000));
    }

    #[test]
    fn a_full_table_parses_and_round_trips() {
        let text = r#"
            listen = "127.0.0.1:9999"
            max_batch = 64
            [detectors.failed_login]
            stuffing_accounts = 3
            max_keys = 500
            [detectors.failed_login.per_ip]
            threshold = 50
            leak = "30/min"
            [detectors.failed_login.per_account]
            threshold = 5
            leak = "1/h"
        "#;
        let c: WatchConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!((c.max_batch.get(), c.detectors.failed_login.per_ip.threshold.get()), (64, 50));
        assert_eq!(c.detectors.failed_login.per_account.leak.to_string(), "1/h");
        let again: WatchConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn mistakes_are_refused_by_name() {
        for (text, needle) in [
            ("lisen = \"127.0.0.1:1\"", "lisen"),
            ("[detectors.failed_logins]", "failed_logins"),
            ("[detectors.failed_login.per_ip]\nthreshold = 5\nleak = \"5/week\"", "5/week"),
            ("[detectors.failed_login.per_ip]\nthreshold = 5", "leak"),
        ] {
            let err = toml::from_str::<WatchConfig>(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let c: WatchConfig = toml::from_str("[detectors.failed_login]\nstuffing_accounts = 40").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("stuffing_accounts"));
        assert!(toml::from_str::<WatchConfig>("max_batch = 0").is_err());
        let c: WatchConfig = toml::from_str("max_batch = 65537").unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("watch.max_batch"));
        toml::from_str::<WatchConfig>("max_batch = 65536").unwrap().validate().unwrap();
    }

    #[test]
    fn responses_and_allow_lists_parse_and_are_checked() {
        let text = r#"
            allow = ["10.0.0.0/8", "client:partner-app"]
            [[responses]]
            name = "decoy"
            when = "alert.attack == 'decoy_hit'"
            action = "block"
            ttl_secs = 3600
            [[responses]]
            name = "stolen"
            when = "alert.attack == 'stolen_token'"
            action = "revoke"
            scope = "family"
            observe_only = true
        "#;
        let c: WatchConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!((c.responses.len(), c.allow.len()), (2, 2));
        let again: WatchConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
        for (text, needle) in [
            ("[[responses]]\nname = \"x\"\nwhen = \"alert.attack ==\"\naction = \"record\"", "watch.responses[0].when"),
            ("[[responses]]\nname = \"x\"\nwhen = \"true\"\naction = \"block\"", "watch.responses[0].ttl_secs"),
            ("allow = [\"10.0.0.0/40\"]", "watch.allow[0]"),
        ] {
            let c: WatchConfig = toml::from_str(text).unwrap();
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let typo =
            toml::from_str::<WatchConfig>("[[responses]]\nname = \"x\"\nwhen = \"true\"\naction = \"record\"\nttl = 1");
        assert!(typo.unwrap_err().to_string().contains("ttl"));
    }
}
