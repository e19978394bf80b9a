//! Turns membership changes into Iterable request bodies (issue 3 item 7, design: Plan).
//!
//! 1. Within one plan, keep only the latest state per (list, identity): by event timestamp,
//!    ties by arrival order, then by input position. The others are `Skipped(superseded)`.
//! 2. Group the survivors per list, direction and the audience settings the body carries.
//! 3. Chunk each group into requests of at most N subscribers and M bytes of JSON.
//!
//! Bodies follow iterable-api.md §2.4/§2.5 field for field: `channelUnsubscribe` is always
//! explicit, `campaignId` only when set and as a number, `updateExistingUsersOnly` always
//! explicit, `preferUserId` only in email projects for userId-only subscribers when enabled,
//! `dataFields` only when non-empty, identifiers per design decision 3. Bodies are serialised
//! once, here; typed views are parsed back on demand (splitting, tests).

use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

use iterable::{ProjectType, SubscribeRequest, UnsubscribeRequest};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{Direction, Identity, MembershipChange, Outcome, ReasonCode};
use crate::settings::{BatchLimits, DestinationSettings, EffectiveAudienceSettings};

/// Destination-wide inputs of planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanConfig {
    /// The project type (which identifiers go in a request).
    pub project_type: ProjectType,
    /// Email projects: `preferUserId: true` for userId-only subscribers.
    pub prefer_user_id: bool,
    /// Subscribers and bytes per request.
    pub limits: BatchLimits,
}

impl PlanConfig {
    /// The planning inputs of a destination.
    pub fn from_settings(s: &DestinationSettings) -> Self {
        PlanConfig {
            project_type: s.project_type,
            prefer_user_id: s.prefer_user_id,
            limits: s.batch,
        }
    }
}

/// One change to plan, with the list its audience resolved to and the audience's effective
/// settings.
#[derive(Debug, Clone, Copy)]
pub struct PlanItem<'a> {
    /// The resolved Iterable list.
    pub list_id: i64,
    /// The audience's effective settings.
    pub settings: EffectiveAudienceSettings,
    /// The change.
    pub change: &'a MembershipChange,
}

/// A request ready to send, with the changes it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRequest {
    /// The list.
    pub list_id: i64,
    /// Subscribe or unsubscribe (which endpoint).
    pub direction: Direction,
    /// The settings the body carries.
    pub settings: EffectiveAudienceSettings,
    /// The serialised JSON body.
    pub body: Vec<u8>,
    /// For each subscriber of the body, in order: the index of its change in the planned items.
    pub changes: Vec<usize>,
}

/// The result of planning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Requests to send.
    pub requests: Vec<PlannedRequest>,
    /// Changes settled by planning itself: superseded ones, and a subscriber too large to fit
    /// any request. Index into the planned items.
    pub settled: Vec<(usize, Outcome)>,
}

impl PlannedRequest {
    /// The Iterable path this request goes to.
    pub fn path(&self) -> &'static str {
        match self.direction {
            Direction::Subscribe => "/api/lists/subscribe",
            Direction::Unsubscribe => "/api/lists/unsubscribe",
        }
    }

    /// The body as a typed subscribe request (`None` for an unsubscribe).
    pub fn subscribe_request(&self) -> Option<SubscribeRequest> {
        match self.direction {
            Direction::Subscribe => serde_json::from_slice(&self.body).ok(),
            Direction::Unsubscribe => None,
        }
    }

    /// The body as a typed unsubscribe request (`None` for a subscribe).
    pub fn unsubscribe_request(&self) -> Option<UnsubscribeRequest> {
        match self.direction {
            Direction::Unsubscribe => serde_json::from_slice(&self.body).ok(),
            Direction::Subscribe => None,
        }
    }

    /// The identifiers of each subscriber as sent, `(email, userId)`, in body order.
    pub fn sent_identifiers(&self) -> Vec<(Option<String>, Option<String>)> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Who {
            email: Option<String>,
            user_id: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Body {
            subscribers: Vec<Who>,
        }
        serde_json::from_slice::<Body>(&self.body)
            .map(|b| {
                b.subscribers
                    .into_iter()
                    .map(|w| (w.email, w.user_id))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Splits the request in halves (design decision 9, for a 400 or 413 answer). `None` when
    /// it carries a single subscriber.
    pub fn split(&self) -> Option<(PlannedRequest, PlannedRequest)> {
        if self.changes.len() < 2 {
            return None;
        }
        let mut v: Value = serde_json::from_slice(&self.body).ok()?;
        let subs = v.get_mut("subscribers")?.as_array_mut()?;
        let right_subs = subs.split_off(subs.len() / 2);
        let mid = subs.len();
        let left_body = serde_json::to_vec(&v).ok()?;
        *v.get_mut("subscribers")? = Value::Array(right_subs);
        let right_body = serde_json::to_vec(&v).ok()?;
        let half = |body, changes: &[usize]| PlannedRequest {
            list_id: self.list_id,
            direction: self.direction,
            settings: self.settings,
            body,
            changes: changes.to_vec(),
        };
        Some((
            half(left_body, &self.changes[..mid]),
            half(right_body, &self.changes[mid..]),
        ))
    }
}

// Field names and order match `iterable::Subscriber`, so the bytes equal its serialisation.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubscriberRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_fields: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefer_user_id: Option<bool>,
}

/// Borrowed ledger key: (is a userId, value). Emails are already lowercased by `Identity`.
fn key_of(id: &Identity, project: ProjectType) -> (bool, &str) {
    match (project, id.user_id(), id.email()) {
        (ProjectType::Email, _, Some(e)) => (false, e),
        (_, Some(u), _) => (true, u),
        (_, None, Some(e)) => (false, e),
        (_, None, None) => (false, ""),
    }
}

#[derive(Hash, PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
struct GroupKey {
    list_id: i64,
    direction: Direction,
    update_existing_users_only: bool,
    channel_unsubscribe: bool,
    campaign_id: Option<i64>,
}

/// Plans requests for a set of changes.
pub fn plan(config: &PlanConfig, items: &[PlanItem<'_>]) -> Plan {
    let mut settled = Vec::new();
    // 1. Latest state per (list, identity).
    let mut latest: HashMap<(i64, bool, &str), usize, FastState> =
        HashMap::with_capacity_and_hasher(items.len(), FastState::new());
    for (i, it) in items.iter().enumerate() {
        let (is_uid, k) = key_of(&it.change.identity, config.project_type);
        match latest.entry((it.list_id, is_uid, k)) {
            Entry::Vacant(v) => {
                v.insert(i);
            }
            Entry::Occupied(mut o) => {
                let cur = &items[*o.get()].change;
                let new = it.change;
                // Later timestamp wins; ties go to the later arrival, then the later position.
                if (new.timestamp, new.received_order) >= (cur.timestamp, cur.received_order) {
                    settled.push((*o.get(), superseded(new)));
                    o.insert(i);
                } else {
                    settled.push((i, superseded(cur)));
                }
            }
        }
    }
    // 2. Group the winners, keeping input order inside a group.
    let mut winners: Vec<usize> = latest.into_values().collect();
    winners.sort_unstable();
    let mut groups: HashMap<GroupKey, Vec<usize>, FastState> =
        HashMap::with_hasher(FastState::new());
    let mut order: Vec<GroupKey> = Vec::new();
    for i in winners {
        let it = &items[i];
        let gk = group_key(it);
        groups
            .entry(gk)
            .or_insert_with(|| {
                order.push(gk);
                Vec::new()
            })
            .push(i);
    }
    order.sort_unstable();
    // 3. Chunk.
    let mut requests = Vec::new();
    for gk in order {
        let members = groups.remove(&gk).unwrap_or_default();
        chunk_group(config, items, gk, members, &mut requests, &mut settled);
    }
    Plan { requests, settled }
}

fn superseded(by: &MembershipChange) -> Outcome {
    Outcome::skipped(
        ReasonCode::Superseded,
        format!(
            "superseded by event {} for the same identity",
            by.message_id
        ),
    )
}

fn group_key(it: &PlanItem<'_>) -> GroupKey {
    let d = it.change.direction;
    // Only the settings a body carries split groups.
    let (ueo, cu, cid) = match d {
        Direction::Subscribe => (it.settings.update_existing_users_only, false, None),
        Direction::Unsubscribe => (
            false,
            it.settings.channel_unsubscribe,
            it.settings.campaign_id,
        ),
    };
    GroupKey {
        list_id: it.list_id,
        direction: d,
        update_existing_users_only: ueo,
        channel_unsubscribe: cu,
        campaign_id: cid,
    }
}

fn prefix(list_id: i64) -> Vec<u8> {
    format!("{{\"listId\":{list_id},\"subscribers\":[").into_bytes()
}

fn suffix(gk: &GroupKey) -> String {
    match gk.direction {
        Direction::Subscribe => format!(
            "],\"updateExistingUsersOnly\":{}}}",
            gk.update_existing_users_only
        ),
        Direction::Unsubscribe => match gk.campaign_id {
            Some(c) => format!(
                "],\"campaignId\":{c},\"channelUnsubscribe\":{}}}",
                gk.channel_unsubscribe
            ),
            None => format!("],\"channelUnsubscribe\":{}}}", gk.channel_unsubscribe),
        },
    }
}

fn subscriber_json(config: &PlanConfig, dir: Direction, c: &MembershipChange, out: &mut Vec<u8>) {
    let (email, user_id) = c.identity.request_identifiers(config.project_type);
    let sub = match dir {
        Direction::Subscribe => SubscriberRef {
            email,
            user_id,
            data_fields: (!c.data_fields.is_empty()).then_some(&c.data_fields),
            prefer_user_id: (config.project_type == ProjectType::Email
                && config.prefer_user_id
                && email.is_none()
                && user_id.is_some())
            .then_some(true),
        },
        // iterable-api.md §2.5: an unsubscriber is only {email?, userId?}.
        Direction::Unsubscribe => SubscriberRef {
            email,
            user_id,
            data_fields: None,
            prefer_user_id: None,
        },
    };
    // Serialising borrowed strings and a JSON map into a Vec cannot fail.
    let _ = serde_json::to_writer(out, &sub);
}

fn chunk_group(
    config: &PlanConfig,
    items: &[PlanItem<'_>],
    gk: GroupKey,
    members: Vec<usize>,
    requests: &mut Vec<PlannedRequest>,
    settled: &mut Vec<(usize, Outcome)>,
) {
    let settings = items
        .get(members.first().copied().unwrap_or(usize::MAX))
        .map(|it| it.settings)
        .unwrap_or_default();
    let head = prefix(gk.list_id);
    let tail = suffix(&gk);
    let overhead = head.len() + tail.len();
    let max_subs = config.limits.max_subscribers.max(1);
    let max_bytes = config.limits.max_bytes;
    // Hybrid requests carry two identifiers each; two identities may share one (same email,
    // different userIds). Such a subscriber waits for the next request so that every sent
    // identifier names one subscriber (attribution).
    let check_shared = config.project_type == ProjectType::Hybrid;
    let mut pending = members;
    let mut sub_buf = Vec::with_capacity(128);
    while !pending.is_empty() {
        let mut deferred = Vec::new();
        let mut body = head.clone();
        let mut changes = Vec::new();
        let mut seen: HashSet<(bool, &str), FastState> = HashSet::with_hasher(FastState::new());
        for &i in &pending {
            let c = items[i].change;
            if check_shared {
                let (e, u) = c.identity.request_identifiers(config.project_type);
                let clash = e.is_some_and(|e| seen.contains(&(false, e)))
                    || u.is_some_and(|u| seen.contains(&(true, u)));
                if clash {
                    deferred.push(i);
                    continue;
                }
            }
            sub_buf.clear();
            subscriber_json(config, gk.direction, c, &mut sub_buf);
            if overhead + sub_buf.len() > max_bytes {
                settled.push((
                    i,
                    Outcome::rejected(
                        ReasonCode::BadInput,
                        format!(
                            "this subscriber alone serialises to {} bytes, over the {max_bytes}-byte request limit",
                            sub_buf.len()
                        ),
                    ),
                ));
                continue;
            }
            let sep = usize::from(!changes.is_empty());
            if changes.len() == max_subs
                || body.len() + sep + sub_buf.len() + tail.len() > max_bytes
            {
                finish(&mut body, &tail);
                requests.push(PlannedRequest {
                    list_id: gk.list_id,
                    direction: gk.direction,
                    settings,
                    body: std::mem::replace(&mut body, head.clone()),
                    changes: std::mem::take(&mut changes),
                });
                seen.clear();
            } else if sep == 1 {
                body.push(b',');
            }
            body.extend_from_slice(&sub_buf);
            changes.push(i);
            if check_shared {
                let (e, u) = c.identity.request_identifiers(config.project_type);
                if let Some(e) = e {
                    seen.insert((false, e));
                }
                if let Some(u) = u {
                    seen.insert((true, u));
                }
            }
        }
        if !changes.is_empty() {
            finish(&mut body, &tail);
            requests.push(PlannedRequest {
                list_id: gk.list_id,
                direction: gk.direction,
                settings,
                body,
                changes,
            });
        }
        pending = deferred;
    }
}

fn finish(body: &mut Vec<u8>, tail: &str) {
    body.extend_from_slice(tail.as_bytes());
}

/// A multiply-rotate hasher (the FxHash scheme) keyed with a per-process random seed.
/// SipHash was the largest single cost of planning; identities are hashed once per change.
#[derive(Clone, Copy)]
struct FastState(u64);

impl FastState {
    fn new() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        FastState(*SEED.get_or_init(|| RandomState::new().hash_one(0x9e37_79b9_u64) | 1))
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

struct FastHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl FastHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(26) ^ w).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // Fold high bits down: hashbrown uses the top 7 bits and the low bits.
        self.0 ^ (self.0 >> 29)
    }
}
