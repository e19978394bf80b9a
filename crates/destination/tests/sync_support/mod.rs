//! Shared helpers of the end-to-end sync tests: an embedded simulator, an executor wired to
//! it, and Engage-shaped events.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use destination::lists::{Clock, ManualClock, MemoryMappingStore, SystemClock};
use destination::model::{Outcome, ReasonCode};
use destination::settings::{ApiKey, DestinationSettings};
use destination::sync::{Executor, SyncSettings, client_for};
use iterable::{Client, ProjectType};
use iterable_sim::{SimConfig, Simulator};
use segment::{Event, Limits};
use serde_json::{Value, json};

pub const KEY: &str = "sim-key-0123456789";

/// A simulator with one project, and an executor sending to it.
pub struct Env {
    pub sim: Simulator,
    pub exec: Executor<Client>,
    pub dest: DestinationSettings,
}

/// Settings for fast tests: no real sleeping (manual clock), pinned jitter.
pub fn fast_settings() -> SyncSettings {
    SyncSettings {
        jitter_seed: Some(1),
        max_attempts: 3,
        ..SyncSettings::default()
    }
}

pub fn dest_for(sim: &Simulator, project: ProjectType) -> DestinationSettings {
    let mut dest = DestinationSettings::new(ApiKey::new(KEY), project);
    dest.endpoint = Some(sim.base_url());
    dest.allow_custom_endpoint = true;
    dest
}

pub async fn start(project: ProjectType) -> Simulator {
    Simulator::start(SimConfig::new().project(KEY, project).seed(7))
        .await
        .expect("simulator starts")
}

/// An executor over a simulator; `real_time` picks the system clock instead of the manual one.
pub fn executor(
    dest: &DestinationSettings,
    settings: SyncSettings,
    real_time: bool,
) -> Executor<Client> {
    let client = client_for(dest).expect("client");
    let clock: Arc<dyn Clock> = if real_time {
        Arc::new(SystemClock::new())
    } else {
        Arc::new(ManualClock::new())
    };
    Executor::with_parts(
        dest.clone(),
        Arc::new(client),
        settings,
        Arc::new(MemoryMappingStore::new()),
        clock,
    )
}

pub async fn env(project: ProjectType, tweak: impl FnOnce(&mut DestinationSettings)) -> Env {
    let sim = start(project).await;
    let mut dest = dest_for(&sim, project);
    tweak(&mut dest);
    let exec = executor(&dest, fast_settings(), false);
    Env { sim, exec, dest }
}

static SECONDS: AtomicU64 = AtomicU64::new(0);

/// An Engage audience event under construction.
#[derive(Clone)]
pub struct Ev {
    pub kind: &'static str,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub audience: String,
    pub member: bool,
    pub list_hint: Option<Value>,
    pub audience_settings: Option<Value>,
    pub traits: serde_json::Map<String, Value>,
}

/// An identify event: `user_id` and/or `email` entering (`member = true`) or leaving.
pub fn ev(audience: &str, user_id: Option<&str>, email: Option<&str>, member: bool) -> Ev {
    Ev {
        kind: "identify",
        user_id: user_id.map(str::to_owned),
        email: email.map(str::to_owned),
        audience: audience.to_owned(),
        member,
        list_hint: None,
        audience_settings: None,
        traits: serde_json::Map::new(),
    }
}

impl Ev {
    pub fn track(mut self) -> Ev {
        self.kind = "track";
        self
    }

    pub fn hint(mut self, list_id: Value) -> Ev {
        self.list_hint = Some(list_id);
        self
    }

    pub fn settings(mut self, s: Value) -> Ev {
        self.audience_settings = Some(s);
        self
    }

    pub fn trait_(mut self, k: &str, v: Value) -> Ev {
        self.traits.insert(k.to_owned(), v);
        self
    }

    /// The event, with a timestamp later than every earlier one built.
    pub fn build(&self) -> Event {
        let n = SECONDS.fetch_add(1, Ordering::SeqCst);
        let ts = format!("2026-11-02T09:{:02}:{:02}.000Z", (n / 60) % 60, n % 60);
        let mut personas = json!({
            "computation_class": "audience",
            "computation_key": self.audience,
            "computation_id": "aud_1",
        });
        if let Some(h) = &self.list_hint {
            personas["external_audience_id"] = h.clone();
        }
        if let Some(s) = &self.audience_settings {
            personas["audience_settings"] = s.clone();
        }
        let mut body = json!({
            "type": self.kind,
            "messageId": format!("m-{n}"),
            "anonymousId": null,
            "timestamp": ts,
            "context": {"personas": personas},
        });
        if let Some(u) = &self.user_id {
            body["userId"] = json!(u);
        }
        let mut fields = self.traits.clone();
        fields.insert(self.audience.clone(), json!(self.member));
        if self.kind == "identify" {
            if let Some(e) = &self.email {
                fields.insert("email".into(), json!(e));
            }
            body["traits"] = Value::Object(fields);
        } else {
            body["event"] = json!(if self.member {
                "Audience Entered"
            } else {
                "Audience Exited"
            });
            if let Some(e) = &self.email {
                body["context"]["traits"] = json!({"email": e});
            }
            body["properties"] = Value::Object(fields);
        }
        segment::parse_event(body.to_string().as_bytes(), &Limits::default()).expect("valid event")
    }
}

pub fn build_all(evs: &[Ev]) -> Vec<Event> {
    evs.iter().map(Ev::build).collect()
}

/// The one list of the project named `name`.
pub fn list_id(sim: &Simulator, name: &str) -> i64 {
    let lists: Vec<_> = sim
        .lists(KEY)
        .unwrap()
        .into_iter()
        .filter(|l| l.name == name)
        .collect();
    assert_eq!(lists.len(), 1, "lists named {name}: {lists:?}");
    lists[0].id
}

/// Members as getUsers names them (`preferUserId` picks userIds in hybrid projects), sorted.
pub fn members(sim: &Simulator, list_id: i64, prefer_user_id: bool) -> Vec<String> {
    let mut m = sim.list_members_by(KEY, list_id, prefer_user_id).unwrap();
    m.sort();
    m
}

pub fn is_delivered(o: &Outcome) -> bool {
    matches!(o, Outcome::Delivered)
}

pub fn code(o: &Outcome) -> Option<ReasonCode> {
    o.reason().map(|r| r.code)
}

pub fn rejected_with(o: &Outcome, c: ReasonCode) -> bool {
    matches!(o, Outcome::Rejected { reason } if reason.code == c)
}

pub fn skipped_with(o: &Outcome, c: ReasonCode) -> bool {
    matches!(o, Outcome::Skipped { reason } if reason.code == c)
}

pub fn request_bodies(report: &destination::sync::SyncReport) -> Vec<Value> {
    report
        .requests
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

pub const GENEROUS: Duration = Duration::from_secs(30);
