//! The watch HTTP API: alerts, their evidence and the timeline of a key; the actions taken and their undoing;
//! the notifications left for users; `GET /healthz`. Every `/api/...` route needs an admin token ([`crate::auth`]).

use std::str::FromStr;
use std::sync::Arc;

use argus_bus::{ControlChannel, EventBus};
use argus_detect::respond::{DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT};
use argus_detect::{
    ActionFilter, ActionRecord, ActionStore, Alert, AlertCursor, AlertFilter, DEFAULT_ALERT_LIMIT, KeyType,
    MAX_ALERT_LIMIT, Notification, TimelinePage, TimelineQuery, WatchStore, WatchStoreError,
};
use argus_model::{Block, Clock, ControlMessage, Event};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::auth::{AdminCaller, ApiAuth, require_admin};
use crate::problem::Problem;
use crate::respond::{announce, loggable};
use crate::stats::{Stats, WatchStats};

#[derive(Clone)]
pub(crate) struct ApiState {
    pub(crate) store: Arc<dyn WatchStore>,
    pub(crate) actions: Arc<dyn ActionStore>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) auth: Arc<ApiAuth>,
    pub(crate) control: ControlChannel,
    pub(crate) bus: EventBus,
    pub(crate) clock: Arc<dyn Clock>,
}

pub(crate) fn router(state: ApiState) -> Router {
    let api = Router::new()
        .route("/api/alerts", get(list_alerts))
        .route("/api/alerts/{id}", get(get_alert))
        .route("/api/keys/{key_type}/{key}/timeline", get(timeline))
        .route("/api/actions", get(list_actions))
        .route("/api/actions/{id}", get(get_action))
        .route("/api/actions/{id}/undo", post(undo_action))
        .route("/api/notifications", get(list_notifications))
        .route_layer(from_fn_with_state(state.auth.clone(), require_admin));
    Router::new()
        .merge(api)
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
    /// The `next` cursor of the previous page.
    before: Option<String>,
}

impl AlertQuery {
    fn into_filter(self) -> Result<AlertFilter, Problem> {
        Ok(AlertFilter {
            attack: parse_opt("attack", self.attack)?,
            key_type: parse_opt("key_type", self.key_type)?,
            key: self.key.filter(|k| !k.is_empty()),
            status: parse_opt("status", self.status)?,
            limit: parse_limit(self.limit)?,
            before: match self.before.as_deref() {
                None | Some("") => None,
                Some(v) => Some(v.parse().map_err(|_| Problem::invalid_request("before must be a next cursor"))?),
            },
        })
    }

    /// The query of the page after `last`: the same filters and limit.
    fn next_page(filter: &AlertFilter, last: &Alert) -> String {
        let mut q = Vec::new();
        let names = [
            ("attack", filter.attack.map(|a| a.as_str().to_owned())),
            ("key_type", filter.key_type.map(|k| k.as_str().to_owned())),
            ("key", filter.key.as_deref().map(percent_encode)),
            ("status", filter.status.map(|s| s.as_str().to_owned())),
        ];
        for (name, value) in names {
            if let Some(v) = value {
                q.push(format!("{name}={v}"));
            }
        }
        q.push(format!("limit={}", filter.limit));
        q.push(format!("before={}", AlertCursor::after(last)));
        q.join("&")
    }
}

/// `value` with every byte but RFC 3986's unreserved ones percent-encoded: a key (an address, a user id, a
/// client id) put back into a query string and a header.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

/// Alerts, most recently seen first, a page at a time: the body stays a plain array (what every client of this
/// list reads), and when the page is full the next one is named in an RFC 8288 `Link: <...>; rel="next"` header,
/// its `before` being the cursor of this page's last alert. The link is relative to this URL (RFC 8288 §3.1):
/// watch may sit behind a proxy that knows its public address better than it does.
async fn list_alerts(
    State(state): State<ApiState>,
    query: Result<Query<AlertQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query.map_err(|rejection| Problem::invalid_request(rejection.body_text()))?;
    let filter = query.into_filter()?;
    let alerts = state.store.alerts(&filter).await.map_err(store_failure)?;
    let next = match alerts.last() {
        Some(last) if alerts.len() == filter.limit as usize => Some(AlertQuery::next_page(&filter, last)),
        _ => None,
    };
    let mut response = Json(alerts).into_response();
    if let Some(Ok(link)) = next.map(|q| HeaderValue::from_str(&format!("</api/alerts?{q}>; rel=\"next\""))) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// An alert with the events its evidence names (those in the audit log) and the actions taken on it.
#[derive(Serialize)]
struct AlertDetail {
    #[serde(flatten)]
    alert: Alert,
    evidence_events: Vec<Event>,
    actions: Vec<ActionRecord>,
}

async fn get_alert(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<AlertDetail>, Problem> {
    let Path(id) = id.map_err(|_| Problem::not_found("no such alert"))?;
    let alert =
        state.store.alert(&id).await.map_err(store_failure)?.ok_or_else(|| Problem::not_found("no such alert"))?;
    let evidence_events = state.actions.events(&alert.evidence).await.map_err(store_failure)?;
    let filter = ActionFilter { alert_id: Some(alert.id.clone()), limit: MAX_LIST_LIMIT, ..ActionFilter::default() };
    let actions = state.actions.actions(&filter).await.map_err(store_failure)?;
    Ok(Json(AlertDetail { alert, evidence_events, actions }))
}

/// `?before=&limit=` of a timeline.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimelineParams {
    before: Option<String>,
    limit: Option<String>,
}

/// The events naming one key, newest first: `{"events": [{"seq", "event"}], "next"}`; pass `next` as `before` for
/// the next page. A page reads a bounded stretch of the log, so it may be short (even empty) with a `next`.
async fn timeline(
    State(state): State<ApiState>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<TimelineParams>, QueryRejection>,
) -> Result<Json<TimelinePage>, Problem> {
    let Path((key_type, key)) = path.map_err(|_| Problem::not_found("no such resource"))?;
    let Query(params) = query.map_err(|rejection| Problem::invalid_request(rejection.body_text()))?;
    let key_type = KeyType::from_str(&key_type).map_err(|_| Problem::invalid_request("unknown key type"))?;
    if key.is_empty() || key.len() > 256 {
        return Err(Problem::invalid_request("the key must be 1 to 256 bytes"));
    }
    let before = match params.before.as_deref() {
        None | Some("") => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| Problem::invalid_request("before must be a record number"))?),
    };
    let query = TimelineQuery { key_type, key, before, limit: parse_list_limit(params.limit)? };
    state.actions.timeline(&query).await.map(Json).map_err(store_failure)
}

/// `?alert=&before=&limit=` of the action list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionParams {
    alert: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

/// A page of a list: the items, and the cursor of the next page when this one is full.
#[derive(Serialize)]
struct ActionPage {
    actions: Vec<ActionRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// Actions, newest first; pass `next` as `before` for the next page.
async fn list_actions(
    State(state): State<ApiState>,
    query: Result<Query<ActionParams>, QueryRejection>,
) -> Result<Json<ActionPage>, Problem> {
    let Query(params) = query.map_err(|rejection| Problem::invalid_request(rejection.body_text()))?;
    let filter = ActionFilter {
        alert_id: params.alert.filter(|a| !a.is_empty()),
        before: params.before.filter(|b| !b.is_empty()),
        limit: parse_list_limit(params.limit)?,
    };
    let actions = state.actions.actions(&filter).await.map_err(store_failure)?;
    let full = actions.len() == filter.limit as usize;
    let next = if full { actions.last().map(|a| a.id.clone()) } else { None };
    Ok(Json(ActionPage { actions, next }))
}

async fn get_action(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ActionRecord>, Problem> {
    let Path(id) = id.map_err(|_| Problem::not_found("no such action"))?;
    match state.actions.action(&id).await {
        Ok(Some(action)) => Ok(Json(action)),
        Ok(None) => Err(Problem::not_found("no such action")),
        Err(error) => Err(store_failure(error)),
    }
}

/// Undoes an action: a block in force is lifted at every gate (the same block, ending now). A revocation cannot be
/// taken back (409 `cannot-undo`, the detail says why), nor can what changed nothing.
async fn undo_action(
    State(state): State<ApiState>,
    Extension(caller): Extension<AdminCaller>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ActionRecord>, Problem> {
    let Path(id) = id.map_err(|_| Problem::not_found("no such action"))?;
    let now = state.clock.now();
    let action = match state.actions.undo_action(&id, now).await.map_err(store_failure)? {
        None => return Err(Problem::not_found("no such action")),
        Some(Err(refusal)) => return Err(Problem::conflict("cannot-undo", "Cannot undo", refusal.to_string())),
        Some(Ok(action)) => action,
    };
    // Only a block in force can be undone (ActionRecord::check_undo); its target is one the gates can block.
    if let Some(target) = action.target.block_target() {
        let reason = format!("undone by {}", caller.client_id);
        state.control.publish(ControlMessage::Block(Block { id: action.id.clone(), target, until: now, reason }));
    }
    tracing::warn!(action_id = %action.id, admin = %caller.client_id, target = %loggable(&action.target), "block lifted");
    announce(&state.bus, now, &action);
    Ok(Json(action))
}

/// `?user=&limit=` of the notification list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationParams {
    user: Option<String>,
    limit: Option<String>,
}

#[derive(Serialize)]
struct NotificationList {
    notifications: Vec<Notification>,
}

/// Notifications left for users, newest first: of one user (`sub`), or of everyone.
async fn list_notifications(
    State(state): State<ApiState>,
    query: Result<Query<NotificationParams>, QueryRejection>,
) -> Result<Json<NotificationList>, Problem> {
    let Query(params) = query.map_err(|rejection| Problem::invalid_request(rejection.body_text()))?;
    let user = params.user.filter(|u| !u.is_empty());
    let limit = parse_list_limit(params.limit)?;
    let notifications = state.actions.notifications(user.as_deref(), limit).await.map_err(store_failure)?;
    Ok(Json(NotificationList { notifications }))
}

fn parse_list_limit(value: Option<String>) -> Result<u32, Problem> {
    match value.as_deref() {
        None | Some("") => Ok(DEFAULT_LIST_LIMIT),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => Ok(n),
            _ => Err(Problem::invalid_request(format!("limit must be an integer from 1 to {MAX_LIST_LIMIT}"))),
        },
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
            before: Some("1764000000123.019a-7f".into()),
        };
        let f = q.into_filter().unwrap();
        assert_eq!(f.attack, Some(argus_detect::Attack::CredentialStuffing));
        assert_eq!((f.key_type, f.key.as_deref(), f.limit), (None, Some("203.0.113.7"), 1000));
        assert_eq!(AlertQuery::default().into_filter().unwrap().limit, 100);

        assert_eq!(f.before.as_ref().map(ToString::to_string).as_deref(), Some("1764000000123.019a-7f"));
        let bad_cursor = AlertQuery { before: Some("12.a b".into()), ..AlertQuery::default() }.into_filter();
        assert_eq!(bad_cursor.unwrap_err().detail.as_deref(), Some("before must be a next cursor"));

        let bad = AlertQuery { key_type: Some("planet".into()), ..AlertQuery::default() }.into_filter().unwrap_err();
        assert_eq!(bad.detail.as_deref(), Some("unknown key_type value"));
        for limit in ["0", "1001", "-1", "ten", "1e3"] {
            let q = AlertQuery { limit: Some(limit.into()), ..AlertQuery::default() };
            assert_eq!(q.into_filter().unwrap_err().status, 400, "{limit}");
        }
    }
}
