//! The control API under `/_sim/`: not part of Iterable's surface, never rate limited, never
//! faulted, never logged.
//!
//! | Method and path | Body / answer |
//! | --- | --- |
//! | `POST /_sim/reset` | back to the configuration |
//! | `GET /_sim/projects` | `[{"id":1001,"type":"hybrid"}]` |
//! | `POST /_sim/projects` | a `ProjectConfig` (`{"id","type","api_keys","lists"?}`) |
//! | `POST /_sim/projects/{id}/keys` | `{"apiKey":"…"}` |
//! | `GET /_sim/projects/{id}/lists` | every list, visible yet or not |
//! | `POST /_sim/projects/{id}/lists` | a `ListConfig` (`{"id","name","listType"?}`) |
//! | `DELETE /_sim/projects/{id}/lists/{listId}` | |
//! | `PUT /_sim/projects/{id}/lists/{listId}/in_use` | `{"inUse":true}`: Iterable's delete then answers 409 |
//! | `GET /_sim/projects/{id}/lists/{listId}/members?preferUserId=` | `["a@x.com", …]` |
//! | `GET /_sim/projects/{id}/users` | every profile |
//! | `GET /_sim/projects/{id}/user?email=…` or `?userId=…` | one profile, or 404 |
//! | `POST /_sim/projects/{id}/forget` | `{"email":…}` or `{"userId":…}` |
//! | `GET`/`DELETE /_sim/log` | the request log / empty it |
//! | `GET`/`PUT /_sim/faults` | a `Faults` |
//! | `GET`/`PUT /_sim/limits` | a `Limits` |

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::SimError;
use crate::config::{Faults, Limits, ListConfig, ProjectConfig};
use crate::sim::{ProjectSummary, Sim, UserRef};

pub(crate) fn router() -> Router<Sim> {
    Router::new()
        .route("/reset", post(reset))
        .route("/projects", get(projects).post(add_project))
        .route("/projects/{pid}/keys", post(add_key))
        .route("/projects/{pid}/lists", get(lists).post(create_list))
        .route("/projects/{pid}/lists/{lid}", delete(delete_list))
        .route("/projects/{pid}/lists/{lid}/members", get(members))
        .route("/projects/{pid}/lists/{lid}/in_use", put(in_use))
        .route("/projects/{pid}/users", get(users))
        .route("/projects/{pid}/user", get(user))
        .route("/projects/{pid}/forget", post(forget))
        .route("/log", get(log).delete(clear_log))
        .route("/faults", get(faults).put(set_faults))
        .route("/limits", get(limits).put(set_limits))
}

fn error(e: SimError) -> Response {
    let status = match e {
        SimError::NoSuchProject | SimError::NoSuchList(_) => StatusCode::NOT_FOUND,
        SimError::ProjectExists(_) | SimError::KeyInUse | SimError::ListExists(_) => {
            StatusCode::CONFLICT
        }
        SimError::Config(_) => StatusCode::BAD_REQUEST,
        SimError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(json!({"error": e.to_string()}))).into_response()
}

fn done(r: Result<(), SimError>) -> Response {
    match r {
        Ok(()) => Json(json!({"ok": true})).into_response(),
        Err(e) => error(e),
    }
}

async fn reset(State(sim): State<Sim>) -> Response {
    done(sim.reset())
}

async fn projects(State(sim): State<Sim>) -> Response {
    let list: Vec<ProjectSummary> = sim
        .projects()
        .into_iter()
        .map(|(id, project_type)| ProjectSummary { id, project_type })
        .collect();
    Json(list).into_response()
}

async fn add_project(State(sim): State<Sim>, Json(p): Json<ProjectConfig>) -> Response {
    done(sim.add_project(p))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyBody {
    api_key: String,
}

async fn add_key(State(sim): State<Sim>, Path(pid): Path<i64>, Json(k): Json<KeyBody>) -> Response {
    done(sim.add_key(pid, &k.api_key))
}

async fn lists(State(sim): State<Sim>, Path(pid): Path<i64>) -> Response {
    match sim.lists(pid) {
        Ok(l) => Json(l).into_response(),
        Err(e) => error(e),
    }
}

async fn create_list(
    State(sim): State<Sim>,
    Path(pid): Path<i64>,
    Json(l): Json<ListConfig>,
) -> Response {
    done(sim.create_list_with(pid, l))
}

async fn delete_list(State(sim): State<Sim>, Path((pid, lid)): Path<(i64, i64)>) -> Response {
    done(sim.delete_list(pid, lid))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InUseBody {
    in_use: bool,
}

async fn in_use(
    State(sim): State<Sim>,
    Path((pid, lid)): Path<(i64, i64)>,
    Json(b): Json<InUseBody>,
) -> Response {
    done(sim.set_list_in_use(pid, lid, b.in_use))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembersQuery {
    #[serde(default)]
    prefer_user_id: bool,
}

async fn members(
    State(sim): State<Sim>,
    Path((pid, lid)): Path<(i64, i64)>,
    Query(q): Query<MembersQuery>,
) -> Response {
    match sim.list_members_by(pid, lid, q.prefer_user_id) {
        Ok(m) => Json(m).into_response(),
        Err(e) => error(e),
    }
}

async fn users(State(sim): State<Sim>, Path(pid): Path<i64>) -> Response {
    match sim.users(pid) {
        Ok(u) => Json(u).into_response(),
        Err(e) => error(e),
    }
}

async fn user(State(sim): State<Sim>, Path(pid): Path<i64>, Query(q): Query<UserRef>) -> Response {
    match sim.user(pid, &q) {
        Ok(Some(u)) => Json(u).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such user"})),
        )
            .into_response(),
        Err(e) => error(e),
    }
}

async fn forget(State(sim): State<Sim>, Path(pid): Path<i64>, Json(u): Json<UserRef>) -> Response {
    done(sim.forget_user(pid, &u))
}

async fn log(State(sim): State<Sim>) -> Response {
    Json(sim.request_log()).into_response()
}

async fn clear_log(State(sim): State<Sim>) -> Response {
    sim.clear_request_log();
    Json(json!({"ok": true})).into_response()
}

async fn faults(State(sim): State<Sim>) -> Response {
    Json(sim.faults().as_ref().clone()).into_response()
}

async fn set_faults(State(sim): State<Sim>, Json(f): Json<Faults>) -> Response {
    sim.set_faults(f);
    Json(json!({"ok": true})).into_response()
}

async fn limits(State(sim): State<Sim>) -> Response {
    Json(sim.limits()).into_response()
}

async fn set_limits(State(sim): State<Sim>, Json(l): Json<Limits>) -> Response {
    sim.set_limits(l);
    Json(json!({"ok": true})).into_response()
}
