//! The admin API under `/admin` (JSON, `Authorization: Bearer <admin token>`), described by
//! `/admin/openapi.json`. It never returns a secret: API keys are write-only (shown as
//! `api_key_set`), write keys and the token are never shown at all.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use delivery::{DestinationConfig, now_ms};
use destination::custom_mapping::{MappingConfig, MappingSet};
use destination::default_mapping::MapContext;
use destination::preview::preview_json;
use destination::settings::ListBinding;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::bearer_ok;
use crate::error::ApiError;
use crate::mappings::MappingChangeError;
use crate::state::AppState;

/// The OpenAPI description of the admin API.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Refuses admin calls without the right bearer token (constant-time comparison).
pub async fn require_token(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = &state.admin_token else {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "the admin API is disabled: set `server.admin_token` or ITERABLE_LISTS_ADMIN_TOKEN",
        )
        .into_response();
    };
    if !bearer_ok(req.headers(), token) {
        let mut resp = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong admin token (send `Authorization: Bearer <token>`)",
        )
        .into_response();
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return resp;
    }
    next.run(req).await
}

/// `GET /admin/openapi.json`.
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

fn dest<'a>(state: &'a AppState, name: &str) -> Result<&'a DestinationConfig, ApiError> {
    state
        .config
        .destination(name)
        .ok_or_else(|| ApiError::not_found(format!("no destination named {name:?}")))
}

fn binding_json(b: &Option<ListBinding>) -> Value {
    match b {
        None => Value::Null,
        Some(ListBinding::Id(id)) => json!({ "id": id }),
        Some(ListBinding::Name(n)) => json!({ "name": n }),
    }
}

/// A destination's settings as the admin API shows them: no secret, only whether each is set.
fn destination_json(d: &DestinationConfig) -> Value {
    let audiences: serde_json::Map<String, Value> = d
        .audiences
        .iter()
        .map(|(k, a)| {
            (
                k.clone(),
                json!({
                    "list": binding_json(&a.list),
                    "update_existing_users_only": a.update_existing_users_only,
                    "global_unsubscribe": a.global_unsubscribe,
                    "campaign_id": a.campaign_id,
                }),
            )
        })
        .collect();
    json!({
        "name": d.name,
        "api_key_set": d.api_key.is_some(),
        "write_key_set": d.write_key.is_some(),
        "region": d.region,
        "endpoint": d.settings().base_url(),
        "allow_custom_endpoint": d.allow_custom_endpoint,
        "project_type": d.project_type,
        "prefer_user_id": d.prefer_user_id,
        "data_fields": d.data_fields,
        "batch": d.batch,
        "rate_per_second": d.rate_per_second,
        "concurrency": d.concurrency,
        "on_missing_list": d.on_missing_list,
        "allow_event_global_unsubscribe": d.allow_event_global_unsubscribe,
        "audiences": audiences,
        "read_only": true,
    })
}

/// `GET /admin/destinations`.
pub async fn destinations(State(state): State<Arc<AppState>>) -> Json<Value> {
    let list: Vec<Value> = state
        .config
        .destinations
        .iter()
        .map(destination_json)
        .collect();
    Json(json!({ "destinations": list }))
}

/// `GET /admin/destinations/{name}`.
pub async fn destination(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(destination_json(dest(&state, &name)?)))
}

/// `GET /admin/status`.
pub async fn status(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let st = state
        .engine
        .status()
        .await
        .map_err(|e| ApiError::from_engine(&e))?;
    Ok(Json(serde_json::to_value(&st).unwrap_or(Value::Null)))
}

async fn store_call<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn store::Store) -> Result<T, store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.engine.store();
    match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ApiError::from_engine(&delivery::EngineError::from(e))),
        Err(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "store task failed",
        )),
    }
}

/// `GET /admin/destinations/{name}/audiences`: key, list, settings and pending changes.
pub async fn audiences(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = dest(&state, &name)?.clone();
    let n = name.clone();
    let auds = store_call(&state, move |s| s.audiences(Some(&n))).await?;
    let n = name.clone();
    let counts = store_call(&state, move |s| s.member_counts(Some(&n))).await?;
    let st = state
        .engine
        .status()
        .await
        .map_err(|e| ApiError::from_engine(&e))?;
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for a in &auds {
        seen.insert(a.audience_key.clone());
        let pending = |dir: &str| -> u64 {
            st.pending
                .iter()
                .filter(|p| {
                    p.destination == name && p.audience_key == a.audience_key && p.direction == dir
                })
                .map(|p| p.pending)
                .sum()
        };
        let c = counts.iter().find(|c| c.audience_key == a.audience_key);
        let count = |f: fn(&store::MemberCounts) -> u64| c.map_or(0, f);
        out.push(json!({
            "key": a.audience_key,
            "list_id": a.list_id,
            "list_created_by_service": a.list_created,
            "configured": d.audiences.contains_key(&a.audience_key),
            "binding": binding_json(&d.audiences.get(&a.audience_key).and_then(|c| c.list.clone())),
            "settings": a.settings,
            "event_settings": a.event_settings,
            "members": {
                "in": count(|c| c.desired_in),
                "confirmed_in": count(|c| c.settled_in),
                "rejected": count(|c| c.rejected),
                "pending_subscribe": pending("subscribe"),
                "pending_unsubscribe": pending("unsubscribe"),
            },
        }));
    }
    // Audiences configured but never seen in an event.
    for (k, c) in &d.audiences {
        if !seen.contains(k) {
            out.push(json!({
                "key": k,
                "list_id": null,
                "configured": true,
                "binding": binding_json(&c.list),
                "settings": null,
                "members": { "pending_subscribe": 0, "pending_unsubscribe": 0 },
            }));
        }
    }
    Ok(Json(json!({ "destination": name, "audiences": out })))
}

/// Query of `GET /admin/log`.
#[derive(Debug, Deserialize)]
pub struct LogParams {
    destination: Option<String>,
    audience: Option<String>,
    identity: Option<String>,
    outcome: Option<String>,
    limit: Option<usize>,
}

/// `GET /admin/log`: the delivery log, newest first.
pub async fn log(
    State(state): State<Arc<AppState>>,
    Query(p): Query<LogParams>,
) -> Result<Json<Value>, ApiError> {
    let outcome = match p.outcome.as_deref() {
        None | Some("") => None,
        Some(o) => Some(
            serde_json::from_value::<store::Outcome>(Value::String(o.to_owned())).map_err(
                |_| {
                    ApiError::bad_request(
                        "bad_outcome",
                        "outcome must be one of pending, retrying, delivered, skipped, rejected",
                    )
                },
            )?,
        ),
    };
    if p.audience.is_some() && p.destination.is_none() {
        return Err(ApiError::bad_request(
            "bad_query",
            "`audience` needs `destination`",
        ));
    }
    let q = store::LogQuery {
        destination: p.destination,
        audience_key: p.audience,
        identity: p.identity,
        outcome,
        limit: p.limit.unwrap_or(100).min(10_000),
    };
    let entries = store_call(&state, move |s| s.log(&q)).await?;
    let list: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            json!({
                "message_id": e.message_id,
                "destination": e.destination,
                "audience": e.audience_key,
                "identity": e.identity,
                "outcome": e.outcome,
                "reason_code": e.reason_code,
                "reason": e.reason,
                "next_attempt_ms": e.next_attempt,
                "request_id": e.request_id,
                "accepted_at_ms": e.accepted_at,
                "updated_at_ms": e.updated_at,
            })
        })
        .collect();
    Ok(Json(json!({ "entries": list })))
}

/// Body of `POST /admin/destinations/{name}/replay`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    audience: Option<String>,
}

/// `POST /admin/destinations/{name}/replay`: re-queues rejected changes.
pub async fn replay(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Option<Json<ReplayBody>>,
) -> Result<Json<Value>, ApiError> {
    dest(&state, &name)?;
    let audience = body.and_then(|b| b.0.audience);
    let n = name.clone();
    let requeued = store_call(&state, move |s| {
        s.replay_rejected(&n, audience.as_deref(), now_ms())
    })
    .await?;
    tracing::info!(destination = %name, requeued, "rejected changes replayed");
    Ok(Json(json!({ "destination": name, "requeued": requeued })))
}

/// `POST /admin/destinations/{name}/pause`: stops delivery to the destination's Iterable
/// project (and so to every destination sharing its API key and endpoint); ingest continues
/// and changes wait in the store.
pub async fn pause(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    dest(&state, &name)?;
    if !state
        .engine
        .pause(&name, "paused by an operator through the admin API")
    {
        return Err(ApiError::not_found(format!(
            "no destination named {name:?}"
        )));
    }
    tracing::info!(destination = %name, "destination paused");
    Ok(Json(json!({ "destination": name, "paused": true })))
}

/// `POST /admin/destinations/{name}/resume`.
pub async fn resume(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    dest(&state, &name)?;
    state.engine.resume(&name);
    tracing::info!(destination = %name, "destination resumed");
    Ok(Json(json!({ "destination": name, "paused": false })))
}

fn mapping_error(e: MappingChangeError) -> ApiError {
    match e {
        MappingChangeError::UnknownDestination(_) | MappingChangeError::NotFound(_) => {
            ApiError::not_found(e.to_string())
        }
        MappingChangeError::ReadOnly(_) => {
            ApiError::new(StatusCode::CONFLICT, "read_only", e.to_string())
        }
        MappingChangeError::Exists(_) => {
            ApiError::new(StatusCode::CONFLICT, "exists", e.to_string())
        }
        MappingChangeError::Invalid(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_mapping",
            e.to_string(),
        ),
        MappingChangeError::Store(se) => ApiError::from_engine(&delivery::EngineError::from(se)),
    }
}

/// `GET /admin/destinations/{name}/mappings`.
pub async fn mappings_list(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let list = state
        .mappings
        .list(&name)
        .ok_or_else(|| ApiError::not_found(format!("no destination named {name:?}")))?;
    Ok(Json(json!({
        "destination": name,
        "default_mapping_in_use": list.is_empty(),
        "mappings": list,
    })))
}

/// `POST /admin/destinations/{name}/mappings`: validates and stores a new mapping.
pub async fn mappings_create(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Json(spec): Json<MappingConfig>,
) -> Result<Response, ApiError> {
    let reg = state.mappings.clone();
    let n = name.clone();
    let rec = tokio::task::spawn_blocking(move || reg.create(&n, spec))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "task failed"))?
        .map_err(mapping_error)?;
    tracing::info!(destination = %name, mapping = %rec.config.name, "mapping created");
    Ok((StatusCode::CREATED, Json(rec)).into_response())
}

/// `PUT /admin/destinations/{name}/mappings/{mapping}`: validates and replaces a stored mapping.
pub async fn mappings_replace(
    State(state): State<Arc<AppState>>,
    Path((name, id)): Path<(String, String)>,
    Json(spec): Json<MappingConfig>,
) -> Result<Json<Value>, ApiError> {
    let reg = state.mappings.clone();
    let rec = tokio::task::spawn_blocking(move || reg.replace(&name, &id, spec))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "task failed"))?
        .map_err(mapping_error)?;
    Ok(Json(serde_json::to_value(rec).unwrap_or(Value::Null)))
}

async fn set_enabled(
    state: Arc<AppState>,
    name: String,
    id: String,
    on: bool,
) -> Result<Json<Value>, ApiError> {
    let reg = state.mappings.clone();
    let rec = tokio::task::spawn_blocking(move || reg.set_enabled(&name, &id, on))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "task failed"))?
        .map_err(mapping_error)?;
    Ok(Json(serde_json::to_value(rec).unwrap_or(Value::Null)))
}

/// `POST /admin/destinations/{name}/mappings/{mapping}/enable`.
pub async fn mappings_enable(
    State(state): State<Arc<AppState>>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    set_enabled(state, name, id, true).await
}

/// `POST /admin/destinations/{name}/mappings/{mapping}/disable`.
pub async fn mappings_disable(
    State(state): State<Arc<AppState>>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    set_enabled(state, name, id, false).await
}

/// `DELETE /admin/destinations/{name}/mappings/{mapping}`.
pub async fn mappings_delete(
    State(state): State<Arc<AppState>>,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let reg = state.mappings.clone();
    tokio::task::spawn_blocking(move || reg.delete(&name, &id))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "task failed"))?
        .map_err(mapping_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /admin/destinations/{name}/test-mapping`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestMappingBody {
    /// One Segment event.
    event: Value,
    /// A mapping to try instead of the destination's own.
    #[serde(default)]
    mapping: Option<MappingConfig>,
}

/// `POST /admin/destinations/{name}/test-mapping`: the outcome and the Iterable request one
/// event would produce (`destination::preview`). Nothing is stored or sent.
pub async fn test_mapping(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Json(body): Json<TestMappingBody>,
) -> Result<Json<Value>, ApiError> {
    let d = dest(&state, &name)?.clone();
    let settings = d.settings();
    let set = match &body.mapping {
        Some(m) => Arc::new(
            MappingSet::single(m)
                .map_err(|e| mapping_error(MappingChangeError::Invalid(e.to_string())))?,
        ),
        None => state
            .mappings
            .set(&name)
            .unwrap_or_else(|| Arc::new(MappingSet::default_mapping())),
    };
    let text = serde_json::to_vec(&body.event)
        .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
    let ctx = MapContext {
        received_order: 0,
        received_at: segment::Timestamp::from_unix_millis(now_ms()),
    };
    let preview = preview_json(&text, &set, &settings, ctx);
    let mut out = serde_json::to_value(&preview).unwrap_or(Value::Null);
    // The list the store already holds for the audience, when the preview could not know it.
    if let Some(m) = &preview.membership {
        let key = m.audience_key.clone();
        let n = name.clone();
        let stored = store_call(&state, move |s| s.audiences(Some(&n)))
            .await?
            .into_iter()
            .find(|a| a.audience_key == key)
            .and_then(|a| a.list_id);
        if let Some(o) = out.as_object_mut() {
            o.insert("storedListId".into(), json!(stored));
        }
    }
    Ok(Json(out))
}
