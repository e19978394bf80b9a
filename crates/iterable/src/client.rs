//! The HTTP client: one per Iterable project (API key and data centre).

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};

use crate::error::{Error, ErrorClass, TransportError, classify, describe_status};
use crate::types::{
    ApiResponse, CreateListRequest, CreateListResponse, GetListsResponse, Region, SubscribeRequest,
    UnsubscribeRequest,
};

/// An Iterable API key. It is sent only in the `Api-Key` header and never shown: `Debug` and
/// `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wrap a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// The key itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where requests go: a data centre, or an explicit base URL (the simulator). Whether an
/// override is allowed is the caller's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The region's public host.
    Region(Region),
    /// An explicit base URL such as `http://127.0.0.1:4010`; paths `/api/...` are appended.
    Custom(String),
}

impl Endpoint {
    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        match self {
            Endpoint::Region(r) => r.base_url(),
            Endpoint::Custom(u) => u.trim_end_matches('/'),
        }
    }
}

/// Client settings. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The project's server-side API key.
    pub api_key: ApiKey,
    /// Where to send requests.
    pub endpoint: Endpoint,
    /// Whole-request timeout for subscribe, unsubscribe, create and delete (default 30 s).
    pub timeout: Duration,
    /// Timeout for `GET /api/lists`, `getUsers` and `size`, whose answers can be large or slow
    /// (default 120 s; peers T3).
    pub read_timeout: Duration,
    /// Connection timeout (default 10 s).
    pub connect_timeout: Duration,
}

impl ClientConfig {
    /// Settings with default timeouts.
    pub fn new(api_key: ApiKey, endpoint: Endpoint) -> Self {
        ClientConfig {
            api_key,
            endpoint,
            timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Which membership endpoint a body goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MembershipOp {
    /// `POST /api/lists/subscribe`
    Subscribe,
    /// `POST /api/lists/unsubscribe`
    Unsubscribe,
}

impl MembershipOp {
    /// The request path.
    pub fn path(self) -> &'static str {
        match self {
            MembershipOp::Subscribe => "/api/lists/subscribe",
            MembershipOp::Unsubscribe => "/api/lists/unsubscribe",
        }
    }
}

/// An HTTP answer as received: what attribution needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body bytes, unparsed.
    pub body: Bytes,
    /// The `Retry-After` header, as a delay from when the answer arrived.
    pub retry_after: Option<Duration>,
}

impl RawResponse {
    /// The class of this answer.
    pub fn class(&self) -> ErrorClass {
        classify(self.status, &self.body)
    }

    /// `HTTP <status>: <Iterable's message>`.
    pub fn describe(&self) -> String {
        describe_status(self.status, &self.body)
    }
}

/// Parse a `Retry-After` value: delta seconds, or an HTTP date relative to `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let at = SystemTime::from(at);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The typed Iterable client. Cheap to clone (connection pool shared).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: ApiKey,
    timeout: Duration,
    read_timeout: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("api_key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Build a client. A custom endpoint must be an absolute `http` or `https` URL.
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        let base = config.endpoint.base_url().to_owned();
        let parsed = url::Url::parse(&base)
            .map_err(|e| Error::Config(format!("endpoint {base:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(Error::Config(format!(
                "endpoint {base:?} must be an http or https URL with a host"
            )));
        }
        let mut key = HeaderValue::from_str(config.api_key.expose()).map_err(|_| {
            Error::Config("the API key contains characters not allowed in a header".into())
        })?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("Api-Key", key);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("iterable-lists/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("could not build the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base,
            key: config.api_key,
            timeout: config.timeout,
            read_timeout: config.read_timeout,
        })
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Remove the key from any text that might echo it (an error body, a URL).
    fn scrub(&self, text: String) -> String {
        let key = self.key.expose();
        if key.len() >= 4 && text.contains(key) {
            text.replace(key, "[redacted]")
        } else {
            text
        }
    }

    fn transport_error(&self, e: reqwest::Error) -> TransportError {
        let (timeout, connect) = (e.is_timeout(), e.is_connect() || e.is_request());
        // The URL never carries the key (it travels in a header), but scrub anyway.
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        let text = self.scrub(text);
        if timeout {
            TransportError::Timeout(text)
        } else if connect {
            TransportError::Connect(text)
        } else {
            TransportError::Other(text)
        }
    }

    async fn execute(
        &self,
        req: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<RawResponse, TransportError> {
        let resp = req
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = resp.bytes().await.map_err(|e| self.transport_error(e))?;
        tracing::debug!(status, bytes = body.len(), "iterable answered");
        Ok(RawResponse {
            status,
            body,
            retry_after,
        })
    }

    /// Send a serialized JSON body to a path with POST; the raw answer comes back.
    pub async fn post_raw(&self, path: &str, body: Bytes) -> Result<RawResponse, TransportError> {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        self.execute(req, self.timeout).await
    }

    /// `POST /api/lists/subscribe` or `/unsubscribe` with an already serialized body.
    pub async fn membership_raw(
        &self,
        op: MembershipOp,
        body: Bytes,
    ) -> Result<RawResponse, TransportError> {
        self.post_raw(op.path(), body).await
    }

    /// `POST /api/lists/subscribe`; the raw answer, for attribution.
    pub async fn subscribe(&self, req: &SubscribeRequest) -> Result<RawResponse, TransportError> {
        self.membership_raw(MembershipOp::Subscribe, to_bytes(req))
            .await
    }

    /// `POST /api/lists/unsubscribe`; the raw answer, for attribution.
    pub async fn unsubscribe(
        &self,
        req: &UnsubscribeRequest,
    ) -> Result<RawResponse, TransportError> {
        self.membership_raw(MembershipOp::Unsubscribe, to_bytes(req))
            .await
    }

    fn status_error(&self, raw: &RawResponse) -> Error {
        Error::Status {
            status: raw.status,
            class: raw.class(),
            message: self.scrub(raw.describe()),
        }
    }

    fn expect_success(&self, raw: RawResponse) -> Result<RawResponse, Error> {
        if raw.class() == ErrorClass::Success {
            Ok(raw)
        } else {
            Err(self.status_error(&raw))
        }
    }

    /// `GET /api/lists`: every list of the project.
    pub async fn get_lists(&self) -> Result<GetListsResponse, Error> {
        let req = self.http.get(format!("{}/api/lists", self.base));
        let raw = self.execute(req, self.read_timeout).await?;
        let raw = self.expect_success(raw)?;
        serde_json::from_slice(&raw.body).map_err(|e| Error::Decode {
            operation: "get lists",
            message: e.to_string(),
        })
    }

    /// `POST /api/lists`: create a static list; returns its id.
    pub async fn create_list(&self, name: &str, description: Option<&str>) -> Result<i64, Error> {
        let body = to_bytes(&CreateListRequest {
            name: name.to_owned(),
            description: description.map(str::to_owned),
        });
        let raw = self.post_raw("/api/lists", body).await?;
        let raw = self.expect_success(raw)?;
        serde_json::from_slice::<CreateListResponse>(&raw.body)
            .map(|r| r.list_id)
            .map_err(|e| Error::Decode {
                operation: "create list",
                message: e.to_string(),
            })
    }

    /// `DELETE /api/lists/{listId}`.
    pub async fn delete_list(&self, list_id: i64) -> Result<ApiResponse, Error> {
        let req = self
            .http
            .delete(format!("{}/api/lists/{list_id}", self.base));
        let raw = self.execute(req, self.timeout).await?;
        let raw = self.expect_success(raw)?;
        // The body is informational; an unexpected one does not undo the deletion.
        Ok(serde_json::from_slice(&raw.body).unwrap_or_default())
    }

    /// `GET /api/lists/{listId}/size`: the member count (text/plain).
    pub async fn list_size(&self, list_id: i64) -> Result<u64, Error> {
        let req = self
            .http
            .get(format!("{}/api/lists/{list_id}/size", self.base));
        let raw = self.execute(req, self.read_timeout).await?;
        let raw = self.expect_success(raw)?;
        let text = String::from_utf8_lossy(&raw.body);
        text.trim()
            .trim_matches('"')
            .parse::<u64>()
            .map_err(|e| Error::Decode {
                operation: "list size",
                message: format!("{e} in {:?}", truncate_for_error(&text)),
            })
    }

    /// `GET /api/lists/getUsers`: every member, one identifier per line (text/plain).
    pub async fn get_users(
        &self,
        list_id: i64,
        prefer_user_id: bool,
    ) -> Result<Vec<String>, Error> {
        let req = self
            .http
            .get(format!("{}/api/lists/getUsers", self.base))
            .query(&[
                ("listId", list_id.to_string()),
                ("preferUserId", prefer_user_id.to_string()),
            ]);
        let raw = self.execute(req, self.read_timeout).await?;
        let raw = self.expect_success(raw)?;
        let text = String::from_utf8_lossy(&raw.body);
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

fn truncate_for_error(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Serialize a request body. Our request types contain only strings, numbers, booleans and
/// JSON maps, so serialization cannot fail; an impossible failure sends `{}`, which Iterable
/// answers with a 400 that is reported, never a panic.
pub fn to_bytes<T: serde::Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()))
}
