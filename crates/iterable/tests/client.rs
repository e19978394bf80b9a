//! The client against a tiny local server: headers, paths, bodies, answers, timeouts, and the
//! API key staying secret.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use iterable::{
    ApiKey, Client, ClientConfig, Endpoint, Error, ErrorClass, MembershipOp, Region,
    SubscribeRequest, Subscriber, TransportError, parse_retry_after,
};

const KEY: &str = "sk_live_0123456789abcdef";

/// One request as the server saw it: what, `Api-Key`, `Content-Type`, body.
type Call = (String, Option<String>, Option<String>, String);

#[derive(Default, Clone)]
struct Seen {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Seen {
    fn record(&self, what: &str, headers: &HeaderMap, body: &[u8]) {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        self.calls.lock().unwrap().push((
            what.to_owned(),
            h("api-key"),
            h("content-type"),
            String::from_utf8_lossy(body).into_owned(),
        ));
    }
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn client(base: &str) -> Client {
    Client::new(ClientConfig::new(
        ApiKey::new(KEY),
        Endpoint::Custom(format!("{base}/")),
    ))
    .unwrap()
}

fn app(seen: Seen) -> Router {
    Router::new()
        .route(
            "/api/lists",
            get(|State(s): State<Seen>, h: HeaderMap| async move {
                s.record("get lists", &h, b"");
                r#"{"lists":[{"id":1068689,"name":"List Four","createdAt":1625162843262,"listType":"Standard"},{"id":982885,"name":"maybe all users?","createdAt":1620165503370,"listType":"Dynamic"}]}"#
            })
            .post(|State(s): State<Seen>, h: HeaderMap, b: Bytes| async move {
                s.record("create", &h, &b);
                r#"{"listId":1068682}"#
            }),
        )
        .route(
            "/api/lists/{id}",
            delete(|State(s): State<Seen>, h: HeaderMap, Path(id): Path<i64>| async move {
                s.record(&format!("delete {id}"), &h, b"");
                format!(r#"{{"msg":"List {id} in Project 10216 was successfully deleted.","code":"Success","params":null}}"#)
            }),
        )
        .route("/api/lists/{id}/size", get(|| async { "1500" }))
        .route(
            "/api/lists/getUsers",
            get(|Query(q): Query<Vec<(String, String)>>| async move {
                assert!(q.contains(&("listId".into(), "7".into())));
                "user1@example.com\nuser2@example.com\n"
            }),
        )
        .route(
            "/api/lists/subscribe",
            post(|State(s): State<Seen>, h: HeaderMap, b: Bytes| async move {
                s.record("subscribe", &h, &b);
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "7")],
                    "Rate limit exceeded. Please try again later.",
                )
            }),
        )
        .route(
            "/api/lists/unsubscribe",
            post(|h: HeaderMap| async move {
                // A hostile or buggy server echoing the key must not leak it through our errors.
                let key = h.get("api-key").unwrap().to_str().unwrap().to_owned();
                (
                    StatusCode::UNAUTHORIZED,
                    format!(r#"{{"msg":"Invalid API key {key}","code":"BadApiKey"}}"#),
                )
                    .into_response()
            }),
        )
        .with_state(seen)
}

// iterable-api.md §1.1, §2.1, §2.2: key in the Api-Key header, JSON bodies, typed answers.
#[tokio::test]
async fn list_calls_send_the_key_header_and_decode_answers() {
    let seen = Seen::default();
    let base = serve(app(seen.clone())).await;
    let c = client(&base);

    let lists = c.get_lists().await.unwrap();
    assert_eq!(lists.lists.len(), 2);
    assert_eq!(lists.lists[0].id, 1068689);
    assert_eq!(c.create_list("vip_users", None).await.unwrap(), 1068682);
    let del = c.delete_list(1068682).await.unwrap();
    assert_eq!(del.code, "Success");
    assert_eq!(c.list_size(7).await.unwrap(), 1500);
    assert_eq!(
        c.get_users(7, false).await.unwrap(),
        vec!["user1@example.com", "user2@example.com"]
    );

    let calls = seen.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    for (_, key, _, _) in &calls {
        assert_eq!(key.as_deref(), Some(KEY));
    }
    let create = &calls[1];
    assert_eq!(create.0, "create");
    assert_eq!(create.2.as_deref(), Some("application/json"));
    assert_eq!(create.3, r#"{"name":"vip_users"}"#);
    assert_eq!(calls[2].0, "delete 1068682");
}

// peers T16: a plain-text 429 is a retryable answer with Retry-After, not a parse failure.
#[tokio::test]
async fn membership_returns_the_raw_answer_with_retry_after() {
    let seen = Seen::default();
    let base = serve(app(seen.clone())).await;
    let c = client(&base);
    let raw = c
        .subscribe(&SubscribeRequest {
            list_id: 7,
            subscribers: vec![Subscriber {
                email: Some("a@x.com".into()),
                ..Default::default()
            }],
            update_existing_users_only: None,
        })
        .await
        .unwrap();
    assert_eq!(raw.status, 429);
    assert_eq!(raw.class(), ErrorClass::Retryable);
    assert_eq!(raw.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(
        &raw.body[..],
        b"Rate limit exceeded. Please try again later."
    );
    let calls = seen.calls.lock().unwrap().clone();
    assert_eq!(
        calls[0].3,
        r#"{"listId":7,"subscribers":[{"email":"a@x.com"}]}"#
    );
}

#[tokio::test]
async fn api_key_never_appears_in_debug_or_errors() {
    let base = serve(app(Seen::default())).await;
    let c = client(&base);
    assert!(!format!("{c:?}").contains(KEY));
    assert!(!format!("{:?}", ApiKey::new(KEY)).contains(KEY));
    assert!(!format!("{}", ApiKey::new(KEY)).contains(KEY));
    let cfg = ClientConfig::new(ApiKey::new(KEY), Endpoint::Region(Region::Us));
    assert!(!format!("{cfg:?}").contains(KEY));

    // The server echoes the key in its 401 body: the raw answer is classified Auth, and the
    // typed error built from such an answer scrubs the key.
    let raw = c
        .membership_raw(MembershipOp::Unsubscribe, "{}".into())
        .await
        .unwrap();
    assert_eq!(raw.class(), ErrorClass::Auth);
    let echoing = serve(Router::new().route(
        "/api/lists",
        post(|h: HeaderMap| async move {
            let key = h.get("api-key").unwrap().to_str().unwrap().to_owned();
            (
                StatusCode::UNAUTHORIZED,
                format!(r#"{{"msg":"Invalid API key {key}","code":"BadApiKey"}}"#),
            )
        }),
    ))
    .await;
    let typed = client(&echoing).create_list("x", None).await.unwrap_err();
    let text = format!("{typed} {typed:?}");
    assert!(text.contains("BadApiKey"), "{text}");
    assert!(!text.contains(KEY), "{text}");
    assert_eq!(typed.class(), ErrorClass::Auth);
}

// Timeouts and refused connections are retryable transport errors without the key.
#[tokio::test]
async fn timeouts_and_refused_connections_are_retryable() {
    let base = serve(Router::new().route(
        "/api/lists/subscribe",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    ))
    .await;
    let mut cfg = ClientConfig::new(ApiKey::new(KEY), Endpoint::Custom(base));
    cfg.timeout = Duration::from_millis(200);
    let c = Client::new(cfg).unwrap();
    let err = c
        .membership_raw(MembershipOp::Subscribe, "{}".into())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Timeout(_)), "{err:?}");
    assert_eq!(Error::from(err.clone()).class(), ErrorClass::Retryable);
    assert!(!err.to_string().contains(KEY));

    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = client(&format!("http://{addr}"));
    let err = c.get_lists().await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable, "{err:?}");
    assert!(!format!("{err} {err:?}").contains(KEY));
}

// iterable-api.md §1.3: the two data centres.
#[test]
fn regions_map_to_their_hosts_and_custom_endpoints_are_validated() {
    assert_eq!(
        Endpoint::Region(Region::Us).base_url(),
        "https://api.iterable.com"
    );
    assert_eq!(
        Endpoint::Region(Region::Eu).base_url(),
        "https://api.eu.iterable.com"
    );
    assert_eq!(
        Endpoint::Custom("http://127.0.0.1:9/".into()).base_url(),
        "http://127.0.0.1:9"
    );
    let bad = Client::new(ClientConfig::new(
        ApiKey::new(KEY),
        Endpoint::Custom("ftp://x".into()),
    ));
    assert!(matches!(bad, Err(Error::Config(_))));
    let bad = Client::new(ClientConfig::new(
        ApiKey::new(KEY),
        Endpoint::Custom("not a url".into()),
    ));
    assert!(matches!(bad, Err(Error::Config(_))));
}

// iterable-api.md §4.2: honour Retry-After when present, in either form.
#[test]
fn retry_after_accepts_seconds_and_http_dates() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
    assert_eq!(
        parse_retry_after("120", now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(parse_retry_after("soon", now), None);
}
