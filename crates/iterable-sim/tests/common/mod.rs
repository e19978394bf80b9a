//! Helpers shared by the black-box tests: a simulator on 127.0.0.1:0 and a thin HTTP client.

#![allow(dead_code)]

use std::time::Duration;

use iterable_sim::{SimConfig, Simulator};
use serde_json::Value;

/// An answer: status, content type, body text, and the `Retry-After` header if any.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub text: String,
    pub retry_after: Option<String>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }
}

pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

pub async fn start(config: SimConfig) -> (Simulator, Api) {
    let sim = Simulator::start(config).await.expect("simulator starts");
    let api = Api {
        base: sim.base_url(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
    };
    (sim, api)
}

async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = r.text().await.expect("body");
    Answer {
        status,
        content_type,
        text,
        retry_after,
    }
}

impl Api {
    pub async fn send(
        &self,
        method: reqwest::Method,
        key: Option<&str>,
        path: &str,
        body: Option<String>,
    ) -> Result<Answer, reqwest::Error> {
        let mut rb = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(k) = key {
            rb = rb.header("Api-Key", k);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b);
        }
        Ok(answer(rb.send().await?).await)
    }

    pub async fn get(&self, key: &str, path: &str) -> Answer {
        self.send(reqwest::Method::GET, Some(key), path, None)
            .await
            .expect("request")
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> Answer {
        self.send(
            reqwest::Method::POST,
            Some(key),
            path,
            Some(body.to_string()),
        )
        .await
        .expect("request")
    }

    pub async fn post_raw(&self, key: &str, path: &str, body: &str) -> Answer {
        self.send(
            reqwest::Method::POST,
            Some(key),
            path,
            Some(body.to_owned()),
        )
        .await
        .expect("request")
    }

    pub async fn delete(&self, key: &str, path: &str) -> Answer {
        self.send(reqwest::Method::DELETE, Some(key), path, None)
            .await
            .expect("request")
    }

    pub async fn subscribe(&self, key: &str, body: Value) -> Answer {
        self.post(key, "/api/lists/subscribe", body).await
    }

    pub async fn unsubscribe(&self, key: &str, body: Value) -> Answer {
        self.post(key, "/api/lists/unsubscribe", body).await
    }

    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let mut rb = self
            .http
            .request(method, format!("{}/_sim{}", self.base, path));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        answer(rb.send().await.expect("control request")).await
    }
}

/// The strings of a JSON array at `pointer`.
pub fn strings(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
