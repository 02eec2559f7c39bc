//! The watch HTTP API: `GET /api/alerts`, `GET /api/alerts/{id}`, `GET /healthz`.

use std::str::FromStr;
use std::sync::Arc;

use argus_detect::{Alert, AlertFilter, DEFAULT_ALERT_LIMIT, MAX_ALERT_LIMIT, WatchStore, WatchStoreError};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::problem::Problem;
use crate::stats::{Stats, WatchStats};

#[derive(Clone)]
pub(crate) struct ApiState {
    pub(crate) store: Arc<dyn WatchStore>,
    pub(crate) stats: Arc<Stats>,
}

pub(crate) fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/alerts", get(list_alerts))
        .route("/api/alerts/{id}", get(get_alert))
        .route("/healthz", get(healthz))
        .fallback(|| async { Problem::not_found("no such resource") })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .with_state(state)
}

/// The query of `GET /api/alerts`. Values are kept as text and parsed one by one, so an error names the parameter.
/// An empty value (`?attack=`) means "any".
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertQuery {
    attack: Option<String>,
    key_type: Option<String>,
    key: Option<String>,
    status: Option<String>,
    limit: Option<String>,
}

impl AlertQuery {
    fn into_filter(self) -> Result<AlertFilter, Problem> {
        Ok(AlertFilter {
            attack: parse_opt("attack", self.attack)?,
            key_type: parse_opt("key_type", self.key_type)?,
            key: self.key.filter(|k| !k.is_empty()),
            status: parse_opt("status", self.status)?,
            limit: parse_limit(self.limit)?,
        })
    }
}

fn parse_opt<T: FromStr>(name: &str, value: Option<String>) -> Result<Option<T>, Problem> {
    match value.as_deref() {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| Problem::invalid_request(format!("unknown {name} value"))),
    }
}

fn parse_limit(value: Option<String>) -> Result<u32, Problem> {
    let out_of_range = || Problem::invalid_request(format!("limit must be an integer from 1 to {MAX_ALERT_LIMIT}"));
    match value.as_deref() {
        None | Some("") => Ok(DEFAULT_ALERT_LIMIT),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_ALERT_LIMIT).contains(&n) => Ok(n),
            _ => Err(out_of_range()),
        },
    }
}

fn store_failure(error: WatchStoreError) -> Problem {
    tracing::error!(%error, "watch API: store failed");
    Problem::internal()
}

/// Alerts, most recently seen first.
async fn list_alerts(
    State(state): State<ApiState>,
    query: Result<Query<AlertQuery>, QueryRejection>,
) -> Result<Json<Vec<Alert>>, Problem> {
    let Query(query) = query.map_err(|rejection| Problem::invalid_request(rejection.body_text()))?;
    let filter = query.into_filter()?;
    state.store.alerts(&filter).await.map(Json).map_err(store_failure)
}

async fn get_alert(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Alert>, Problem> {
    let Path(id) = id.map_err(|_| Problem::not_found("no such alert"))?;
    match state.store.alert(&id).await {
        Ok(Some(alert)) => Ok(Json(alert)),
        Ok(None) => Err(Problem::not_found("no such alert")),
        Err(error) => Err(store_failure(error)),
    }
}

/// 200 with the consumer's counters while it runs; 503 once it has stopped (alerts would silently go stale).
async fn healthz(State(state): State<ApiState>) -> Response {
    let stats: WatchStats = state.stats.snapshot();
    if stats.running {
        Json(serde_json::json!({ "status": "ok", "consumer": stats })).into_response()
    } else {
        Problem::unavailable("the event consumer is not running").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_name_the_bad_parameter() {
        let q = AlertQuery {
            attack: Some("credential_stuffing".into()),
            key_type: Some("".into()),
            key: Some("203.0.113.7".into()),
            status: Some("open".into()),
            limit: Some("1000".into()),
        };
        let f = q.into_filter().unwrap();
        assert_eq!(f.attack, Some(argus_detect::Attack::CredentialStuffing));
        assert_eq!((f.key_type, f.key.as_deref(), f.limit), (None, Some("203.0.113.7"), 1000));
        assert_eq!(AlertQuery::default().into_filter().unwrap().limit, 100);

        let bad = AlertQuery { key_type: Some("planet".into()), ..AlertQuery::default() }.into_filter().unwrap_err();
        assert_eq!(bad.detail.as_deref(), Some("unknown key_type value"));
        for limit in ["0", "1001", "-1", "ten", "1e3"] {
            let q = AlertQuery { limit: Some(limit.into()), ..AlertQuery::default() };
            assert_eq!(q.into_filter().unwrap_err().status, 400, "{limit}");
        }
    }
}
