//! The HTTP surface: one handler per operation of `openapi.yaml`, each parsing its input into the bank's types and
//! mapping the bank's answers to JSON or a problem.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde::Deserialize;

use crate::auth::Caller;
use crate::bank::{Account, NewTransfer, Transfer, TransferError};
use crate::problem::{Kind, Problem};
use crate::{DemoApi, OPENAPI_YAML};

/// A transfer body is ~200 bytes; anything far larger is not a transfer.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Page size of `GET /accounts/{id}/transfers` when `limit` is absent, and its bounds (as in the spec).
const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

pub(crate) fn router(api: DemoApi) -> Router {
    Router::new()
        .route("/accounts", get(list_accounts))
        .route("/accounts/{id}", get(get_account))
        .route("/accounts/{id}/transfers", get(list_account_transfers))
        .route("/transfers", post(create_transfer))
        .route("/transfers/{id}", get(get_transfer))
        .route("/openapi.yaml", get(openapi))
        .route("/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::map_response(no_store))
        .with_state(api)
}

/// `GET /accounts`: the caller's own accounts.
async fn list_accounts(State(api): State<DemoApi>, caller: Caller) -> Json<Vec<Account>> {
    Json(api.read().accounts_of(&caller.sub))
}

/// `GET /accounts/{id}`: any account. INTENTIONALLY no ownership check — the BOLA hole the gate's rules close in a
/// later issue. The caller must still present a token.
async fn get_account(
    State(api): State<DemoApi>,
    _caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Account>, Problem> {
    let id = parse_id(id)?;
    api.read().account(id).cloned().map(Json).ok_or_else(|| not_found_problem("no account with this id"))
}

#[derive(Deserialize)]
struct TransferListQuery {
    limit: Option<u32>,
}

/// `GET /accounts/{id}/transfers`: the transfers of one of the caller's accounts, newest first.
async fn list_account_transfers(
    State(api): State<DemoApi>,
    caller: Caller,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<TransferListQuery>, QueryRejection>,
) -> Result<Json<Vec<Transfer>>, Problem> {
    let id = parse_id(id)?;
    let limit = parse_limit(query)?;
    let bank = api.read();
    // A foreign account is reported exactly like a missing one, so this endpoint does not confirm which ids exist.
    match bank.account(id) {
        Some(account) if account.owner_sub == caller.sub => Ok(Json(bank.transfers_of_account(id, limit))),
        _ => Err(not_found_problem("no account with this id among yours")),
    }
}

/// `POST /transfers`: move money from one of the caller's accounts.
async fn create_transfer(
    State(api): State<DemoApi>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, Problem> {
    require_json_content_type(&headers)?;
    let body = body.map_err(body_problem)?;
    let request: NewTransfer = serde_json::from_slice(&body)
        .map_err(|e| Problem::new(Kind::InvalidRequest, format!("the body is not a valid transfer: {e}")))?;
    let now = api.clock.now();
    let transfer = api.write().transfer(&caller.sub, &request, now).map_err(transfer_problem)?;
    tracing::info!(
        transfer_id = transfer.id,
        from_account = transfer.from_account,
        to_account = transfer.to_account,
        amount = transfer.amount,
        "demo transfer created"
    );
    let location = format!("/transfers/{}", transfer.id);
    Ok((StatusCode::CREATED, [(LOCATION, location)], Json(transfer)))
}

/// `GET /transfers/{id}`: any transfer. INTENTIONALLY no ownership check, like `GET /accounts/{id}`.
async fn get_transfer(
    State(api): State<DemoApi>,
    _caller: Caller,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Transfer>, Problem> {
    let id = parse_id(id)?;
    api.read().transfer_by_id(id).cloned().map(Json).ok_or_else(|| not_found_problem("no transfer with this id"))
}

/// `GET /openapi.yaml`: public, so tools and the gate can read the spec.
async fn openapi() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/yaml")], OPENAPI_YAML)
}

/// `GET /health`: public liveness probe.
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn not_found() -> Problem {
    not_found_problem("no such resource")
}

async fn method_not_allowed() -> Problem {
    Problem::new(Kind::MethodNotAllowed, "this resource does not support this method")
}

/// Banking data must not sit in shared caches.
async fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn not_found_problem(detail: &str) -> Problem {
    Problem::new(Kind::NotFound, detail)
}

/// A path id as the spec defines it: a positive int64 in plain decimal digits (no sign, no spaces).
fn parse_id(raw: Result<Path<String>, PathRejection>) -> Result<u64, Problem> {
    let invalid = || Problem::new(Kind::InvalidRequest, "the id must be a positive integer");
    let Path(raw) = raw.map_err(|_| invalid())?;
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    raw.parse::<i64>().ok().filter(|id| *id >= 1).and_then(|id| u64::try_from(id).ok()).ok_or_else(invalid)
}

fn parse_limit(raw: Result<Query<TransferListQuery>, QueryRejection>) -> Result<usize, Problem> {
    let invalid = || Problem::new(Kind::InvalidRequest, format!("limit must be an integer from 1 to {MAX_LIMIT}"));
    let Query(query) = raw.map_err(|_| invalid())?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid());
    }
    usize::try_from(limit).map_err(|_| invalid())
}

/// `application/json`, with or without parameters such as `charset`.
fn require_json_content_type(headers: &HeaderMap) -> Result<(), Problem> {
    let essence =
        headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next()).map(str::trim);
    match essence {
        Some(media_type) if media_type.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(Problem::new(Kind::UnsupportedMediaType, "send the transfer as application/json")),
    }
}

fn body_problem(rejection: BytesRejection) -> Problem {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(Kind::BodyTooLarge, format!("the body must be at most {MAX_BODY_BYTES} bytes"))
    } else {
        Problem::new(Kind::InvalidRequest, "the body could not be read")
    }
}

fn transfer_problem(error: TransferError) -> Problem {
    let kind = match error {
        TransferError::NotOwner => Kind::NotAccountOwner,
        TransferError::InsufficientFunds => Kind::InsufficientFunds,
        TransferError::AmountOutOfRange
        | TransferError::BadMemo
        | TransferError::SameAccount
        | TransferError::UnknownDestination
        | TransferError::CurrencyMismatch
        | TransferError::Overflow => Kind::InvalidRequest,
    };
    Problem::new(kind, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: &str) -> Result<u64, Problem> {
        parse_id(Ok(Path(raw.to_owned())))
    }

    #[test]
    fn ids_are_positive_decimal_int64() {
        assert_eq!(id("1001"), Ok(1001));
        assert_eq!(id("9223372036854775807"), Ok(9_223_372_036_854_775_807));
        for bad in ["", "0", "-1", "+1", " 1", "1e3", "0x10", "9223372036854775808", "99999999999999999999", "١"] {
            assert_eq!(id(bad).map_err(|p| p.kind()), Err(Kind::InvalidRequest), "{bad:?}");
        }
    }

    #[test]
    fn limit_defaults_and_is_bounded() {
        let limit = |l: Option<u32>| parse_limit(Ok(Query(TransferListQuery { limit: l })));
        assert_eq!(limit(None), Ok(20));
        assert_eq!(limit(Some(1)), Ok(1));
        assert_eq!(limit(Some(100)), Ok(100));
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(101)).is_err());
    }

    #[test]
    fn json_content_type_may_carry_parameters() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(v));
            require_json_content_type(&h)
        };
        assert!(with("application/json").is_ok());
        assert!(with("Application/JSON; charset=utf-8").is_ok());
        assert!(with("text/plain").is_err());
        assert!(with("application/json-patch+json").is_err());
        assert!(require_json_content_type(&HeaderMap::new()).is_err());
    }
}
