//! Iterable's list endpoints over HTTP: routing, authentication, limits and faults, then the
//! operation itself (iterable-api.md §1–§4).

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use iterable::types::{CreateListRequest, GetListsResponse};
use serde_json::{Map, Value, json};

use crate::body::{self, CREATE_LIST, SUBSCRIBE, SubscribeBody, UNSUBSCRIBE, UnsubscribeBody};
use crate::config::{CutMode, Endpoint, Faults, LimitBody, LimitResponse, RetryAfter};
use crate::log::Entry;
use crate::model::{List, ListProblem, ProjectData};
use crate::rng::Draws;
use crate::server::ConnCut;
use crate::sim::{Project, Sim};

/// The whole router: the control API under `/_sim/`, Iterable's endpoints everywhere else.
pub(crate) fn router(sim: Sim) -> Router {
    Router::new()
        .nest("/_sim", crate::control::router())
        .fallback(api)
        .with_state(sim)
}

/// A matched Iterable route.
#[derive(Debug, Clone, Copy)]
enum Route {
    Endpoint(Endpoint, Option<i64>),
    BadListId,
    NotFound,
}

fn classify(method: &Method, path: &str) -> Route {
    let path = path.strip_suffix('/').unwrap_or(path);
    let Some(rest) = path.strip_prefix("/api/lists") else {
        return Route::NotFound;
    };
    let ep = |e| Route::Endpoint(e, None);
    match (method, rest) {
        (&Method::GET, "") => ep(Endpoint::GetLists),
        (&Method::POST, "") => ep(Endpoint::CreateList),
        (&Method::POST, "/subscribe") => ep(Endpoint::Subscribe),
        (&Method::POST, "/unsubscribe") => ep(Endpoint::Unsubscribe),
        (&Method::GET, "/getUsers") => ep(Endpoint::GetUsers),
        (&Method::GET, "/previewUsers") => ep(Endpoint::PreviewUsers),
        (m, r) => {
            let Some(r) = r.strip_prefix('/') else {
                return Route::NotFound;
            };
            let (id, size) = match r.strip_suffix("/size") {
                Some(id) => (id, true),
                None => (r, false),
            };
            if id.contains('/') || id.is_empty() {
                return Route::NotFound;
            }
            let endpoint = match (m, size) {
                (&Method::DELETE, false) => Endpoint::DeleteList,
                (&Method::GET, true) => Endpoint::Size,
                _ => return Route::NotFound,
            };
            match id.parse::<i64>() {
                Ok(id) => Route::Endpoint(endpoint, Some(id)),
                Err(_) => Route::BadListId,
            }
        }
    }
}

/// What the pipeline decided.
enum Outcome {
    Respond(Response),
    /// Cut the connection; `hang` first holds it silent for that long.
    Cut(Option<Duration>),
}

/// The faults drawn for one request; always drawn in the same order so that a seed replays.
struct Fate {
    delay: Option<Duration>,
    cut_before: bool,
    cut_after: bool,
    error: Option<u16>,
}

fn draw_fate(faults: &Faults, endpoint: Endpoint, seed: u64, seq: u64) -> Fate {
    let mut d = Draws::new(seed, seq);
    let (u_delay, u_delay_len, u_cut, u_err, u_status) =
        (d.unit(), d.unit(), d.unit(), d.unit(), d.below(1 << 32));
    let applies = faults.endpoints.is_empty() || faults.endpoints.contains(&endpoint);
    if !applies {
        return Fate {
            delay: None,
            cut_before: false,
            cut_after: false,
            error: None,
        };
    }
    let delay = (u_delay < faults.delay_rate).then(|| {
        let (lo, hi) = (
            faults.delay_min_ms,
            faults.delay_max_ms.max(faults.delay_min_ms),
        );
        Duration::from_millis(lo + ((hi - lo) as f64 * u_delay_len) as u64)
    });
    let cut_before = u_cut < faults.cut_before_rate;
    let cut_after = !cut_before && u_cut < faults.cut_before_rate + faults.cut_after_rate;
    let error = (!cut_before
        && !cut_after
        && u_err < faults.error_rate
        && !faults.error_statuses.is_empty())
    .then(|| faults.error_statuses[(u_status % faults.error_statuses.len() as u64) as usize]);
    Fate {
        delay,
        cut_before,
        cut_after,
        error,
    }
}

async fn api(State(sim): State<Sim>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let cut = parts.extensions.get::<ConnCut>().cloned();
    let seq = sim.next_seq();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let mut entry = Entry {
        seq,
        method: parts.method.to_string(),
        path,
        project_id: None,
        body: Bytes::new(),
        status: None,
        fault: None,
    };
    let outcome = match to_bytes(body, sim.max_body_bytes()).await {
        Ok(bytes) => {
            entry.body = bytes.clone();
            pipeline(&sim, &parts, bytes, seq, &mut entry).await
        }
        Err(_) => Outcome::Respond(json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"msg": "Request body too large", "code": "BatchTooLarge", "params": null}),
        )),
    };
    match outcome {
        Outcome::Respond(resp) => {
            entry.status = Some(resp.status().as_u16());
            sim.inner.log.push(entry);
            resp
        }
        Outcome::Cut(hang) => {
            sim.inner.log.push(entry);
            if let Some(h) = hang {
                tokio::time::sleep(h).await;
            }
            match cut {
                Some(c) => {
                    c.cut();
                    // The connection task drops this future with the connection.
                    std::future::pending::<Response>().await
                }
                None => plain(StatusCode::INTERNAL_SERVER_ERROR, "connection cut"),
            }
        }
    }
}

fn api_key(parts: &http::request::Parts) -> Option<&str> {
    // Header names are case-insensitive; Iterable accepts `Api-Key` and `Api_Key`.
    parts
        .headers
        .get("api-key")
        .or_else(|| parts.headers.get("api_key"))
        .and_then(|v| v.to_str().ok())
}

async fn pipeline(
    sim: &Sim,
    parts: &http::request::Parts,
    bytes: Bytes,
    seq: u64,
    entry: &mut Entry,
) -> Outcome {
    let route = classify(&parts.method, parts.uri.path());
    if let Route::NotFound = route {
        return Outcome::Respond(not_found());
    }
    // Authentication comes before anything else the request could be told.
    let Some(project) = api_key(parts).and_then(|k| sim.project_by_key(k)) else {
        return Outcome::Respond(json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"msg": "Invalid API key", "code": "BadApiKey",
                    "params": {"ip": "127.0.0.1", "endpoint": parts.uri.path()}}),
        ));
    };
    entry.project_id = Some(project.id);
    let Route::Endpoint(endpoint, path_id) = route else {
        return Outcome::Respond(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"msg": "Invalid parameters: listId must be an integer",
                    "code": "BadParams", "params": null}),
        ));
    };

    let limits = sim.limits_state();
    let admitted =
        project
            .buckets
            .lock()
            .admit(&limits.limits, limits.generation, endpoint, Instant::now());
    if let Err(wait) = admitted {
        entry.fault = Some("rate_limit");
        return Outcome::Respond(rate_limited(
            &limits.limits.response,
            endpoint,
            project.id,
            Some(wait),
        ));
    }

    let faults = sim.faults();
    let fate = draw_fate(&faults, endpoint, sim.seed(), seq);
    if let Some(d) = fate.delay {
        entry.fault = Some("delay");
        tokio::time::sleep(d).await;
    }
    let hang = (faults.cut_mode == CutMode::Hang).then(|| Duration::from_millis(faults.hang_ms));
    if fate.cut_before {
        entry.fault = Some("cut_before");
        return Outcome::Cut(hang);
    }
    if let Some(status) = fate.error {
        entry.fault = Some("error");
        return Outcome::Respond(injected_error(
            status,
            &sim.limits_state().limits.response,
            endpoint,
            project.id,
        ));
    }
    let resp = execute(sim, &project, endpoint, path_id, parts, &bytes, seq);
    if fate.cut_after {
        entry.fault = Some("cut_after");
        return Outcome::Cut(hang);
    }
    Outcome::Respond(resp)
}

fn execute(
    sim: &Sim,
    project: &Project,
    endpoint: Endpoint,
    path_id: Option<i64>,
    parts: &http::request::Parts,
    bytes: &[u8],
    seq: u64,
) -> Response {
    let now = Instant::now();
    let bad_json = |params: Map<String, Value>| {
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({"msg": format!("[{}] Invalid JSON body", parts.uri.path()),
                    "code": "BadJsonBody", "params": params}),
        )
    };
    match endpoint {
        Endpoint::GetLists => {
            let lists = project.data.lock().list_details();
            json_response(StatusCode::OK, &GetListsResponse { lists })
        }
        Endpoint::CreateList => match body::parse::<CreateListRequest>(bytes, &CREATE_LIST) {
            Ok(req) => {
                let id = sim.api_create_list(project, req.name, req.description);
                json_response(StatusCode::OK, &json!({ "listId": id }))
            }
            Err(params) => bad_json(params),
        },
        Endpoint::DeleteList => {
            let id = path_id.unwrap_or_default();
            let mut data = project.data.lock();
            match data.visible_list(id, now) {
                Err(_) => return invalid_list_id(project.id, id),
                // iterable-api.md §2.3, G9: 409 "List is in use".
                Ok(list) if list.in_use => {
                    return json_response(
                        StatusCode::CONFLICT,
                        &json!({"msg": "List is in use", "code": "BadParams",
                                "params": {"listId": id}}),
                    );
                }
                Ok(_) => {}
            }
            data.lists.remove(&id);
            json_response(
                StatusCode::OK,
                &json!({"msg": format!("List {id} in Project {} was successfully deleted.", project.id),
                        "code": "Success", "params": null}),
            )
        }
        Endpoint::Subscribe => match body::parse::<SubscribeBody>(bytes, &SUBSCRIBE) {
            Ok(req) => {
                let mut data = project.data.lock();
                if data.visible_list(req.list_id, now).is_err() {
                    return invalid_list_id(project.id, req.list_id);
                }
                let answer = data.subscribe(req);
                drop(data);
                json_response(StatusCode::OK, &answer)
            }
            Err(params) => bad_json(params),
        },
        Endpoint::Unsubscribe => match body::parse::<UnsubscribeBody>(bytes, &UNSUBSCRIBE) {
            Ok(req) => {
                let mut data = project.data.lock();
                if data.visible_list(req.list_id, now).is_err() {
                    return invalid_list_id(project.id, req.list_id);
                }
                let answer = data.unsubscribe(req);
                drop(data);
                json_response(StatusCode::OK, &answer)
            }
            Err(params) => bad_json(params),
        },
        Endpoint::GetUsers | Endpoint::PreviewUsers => {
            let q = match Query::parse(parts.uri.query().unwrap_or("")) {
                Ok(q) => q,
                Err(params) => return bad_params(params),
            };
            let Some(list_id) = q.list_id else {
                let mut params = Map::new();
                params.insert("listId".into(), "error.path.missing".into());
                return bad_params(params);
            };
            let data = project.data.lock();
            let list = match data.visible_list(list_id, now) {
                Ok(l) => l,
                Err(ListProblem::Missing) => return invalid_list_id(project.id, list_id),
            };
            let mut ids = data.members(list, q.prefer_user_id);
            drop(data);
            if endpoint == Endpoint::PreviewUsers {
                let size = q.size.unwrap_or(1000);
                if !(1..=5000).contains(&size) {
                    let mut params = Map::new();
                    params.insert("size".into(), "must be between 1 and 5000".into());
                    return bad_params(params);
                }
                sample(&mut ids, size as usize, sim.seed(), seq);
            }
            let mut text = String::with_capacity(ids.iter().map(|s| s.len() + 1).sum());
            for id in ids {
                text.push_str(&id);
                text.push('\n');
            }
            plain(StatusCode::OK, text)
        }
        Endpoint::Size => {
            let id = path_id.unwrap_or_default();
            let data = project.data.lock();
            match data.visible_list(id, now) {
                Ok(list) => plain(StatusCode::OK, list_size(&data, list).to_string()),
                Err(_) => invalid_list_id(project.id, id),
            }
        }
    }
}

fn list_size(data: &ProjectData, list: &List) -> usize {
    data.list_size(list)
}

/// A partial Fisher–Yates shuffle drawn from the seed: a random sample of `size`.
fn sample(ids: &mut Vec<String>, size: usize, seed: u64, seq: u64) {
    let mut d = Draws::new(seed ^ 0x5A5A_5A5A, seq);
    let n = ids.len();
    let take = size.min(n);
    for i in 0..take {
        let j = i + d.below((n - i) as u64) as usize;
        ids.swap(i, j);
    }
    ids.truncate(take);
}

#[derive(Default)]
struct Query {
    list_id: Option<i64>,
    prefer_user_id: bool,
    size: Option<i64>,
}

impl Query {
    fn parse(q: &str) -> Result<Query, Map<String, Value>> {
        let mut out = Query::default();
        let mut errors = Map::new();
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "listId" => match v.parse() {
                    Ok(n) => out.list_id = Some(n),
                    Err(_) => {
                        errors.insert("listId".into(), "Long value expected".into());
                    }
                },
                "size" => match v.parse() {
                    Ok(n) => out.size = Some(n),
                    Err(_) => {
                        errors.insert("size".into(), "Int value expected".into());
                    }
                },
                "preferUserId" => match v {
                    "true" => out.prefer_user_id = true,
                    "false" => out.prefer_user_id = false,
                    _ => {
                        errors.insert("preferUserId".into(), "Boolean value expected".into());
                    }
                },
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

pub(crate) fn json_response<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    let mut r = Response::new(Body::from(text.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn html(status: StatusCode, text: &'static str) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// Unknown route: an HTML page, not JSON (iterable-api.md §4.1).
fn not_found() -> Response {
    html(
        StatusCode::NOT_FOUND,
        "<!DOCTYPE html>\n<html><head><title>Action not found</title></head>\
         <body><h1>Action not found</h1></body></html>\n",
    )
}

/// iterable-api.md §4.1 and gotcha G2: a 400 whose code says "Success".
fn invalid_list_id(project_id: i64, list_id: i64) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"msg": format!("error.lists.invalidListId({list_id})"), "code": "Success",
                "params": {"projectId": project_id, "listId": list_id}}),
    )
}

fn bad_params(params: Map<String, Value>) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"msg": "Invalid query parameters", "code": "BadParams", "params": params}),
    )
}

fn rate_limited(
    response: &LimitResponse,
    endpoint: Endpoint,
    project_id: i64,
    wait: Option<Duration>,
) -> Response {
    let msg = format!(
        "Exceeded rate limit for endpoint: {}, project: {project_id} ",
        endpoint.path()
    );
    let mut r = match response.body {
        LimitBody::Json => json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({"msg": msg, "code": "RateLimitExceeded", "params": {}}),
        ),
        LimitBody::Text => plain(StatusCode::TOO_MANY_REQUESTS, msg),
    };
    let secs = match response.retry_after {
        RetryAfter::None => None,
        RetryAfter::Seconds(s) => Some(s),
        RetryAfter::Computed => Some(wait.map_or(1, |w| w.as_secs_f64().ceil().max(1.0) as u64)),
    };
    if let Some(s) = secs {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

/// The heterogeneous bodies of server errors (iterable-api.md gotcha G17).
fn injected_error(
    status: u16,
    limit: &LimitResponse,
    endpoint: Endpoint,
    project_id: i64,
) -> Response {
    match status {
        429 => rate_limited(limit, endpoint, project_id, None),
        502 => html(
            StatusCode::BAD_GATEWAY,
            "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n",
        ),
        504 => html(
            StatusCode::GATEWAY_TIMEOUT,
            "<html><head><title>504 Gateway Time-out</title></head><body><center><h1>504 Gateway Time-out</h1></center></body></html>\n",
        ),
        503 => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"msg": "Request timeout. Try again later.", "code": "GenericError", "params": null}),
        ),
        other => json_response(
            StatusCode::from_u16(other).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &json!({"msg": "Internal server error", "code": "GenericError", "params": null}),
        ),
    }
}
