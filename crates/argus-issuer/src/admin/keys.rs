//! `GET /admin/v1/keys`: the signing keys and where each is in its life (pending, active, retiring, retired).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::auth::Admin;
use crate::state::Shared;

pub(crate) async fn list(State(s): State<Shared>, _admin: Admin) -> Json<Value> {
    Json(json!({ "keys": s.keys.schedule() }))
}
