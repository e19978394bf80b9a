//! One project's data: users, lists, field types, forgotten identities, and the list
//! operations that change them (iterable-api.md §2.4, §2.5, §6).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Instant;

use iterable::types::{FailedUpdates, ListDetails, ListType, ProjectType};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::body::{SubscribeBody, UnsubscribeBody};
use crate::fields::{self, FieldType};
use crate::hash::{FastMap, FastSet};
use crate::identity::{valid_email, valid_user_id};

/// The channel every list of a simulated project is associated with.
pub(crate) const EMAIL_CHANNEL_ID: i64 = 1;

/// A user's profile as the simulator holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserProfile {
    /// The email (stored lowercase), if any.
    pub email: Option<String>,
    /// The userId, if any.
    pub user_id: Option<String>,
    /// Profile fields merged from `dataFields`.
    pub data_fields: Map<String, Value>,
    /// Static lists the user is a member of, ascending.
    pub list_ids: Vec<i64>,
    /// Channels the user unsubscribed from (through `channelUnsubscribe: true`).
    pub unsubscribed_channel_ids: Vec<i64>,
    /// The latest attributed or channel unsubscribe per list (unsubscribes that carried a
    /// `campaignId` or `channelUnsubscribe: true`).
    pub unsubscribes: Vec<UnsubscribeRecord>,
}

/// An unsubscribe that carried a campaign or a channel unsubscribe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnsubscribeRecord {
    /// The list left.
    pub list_id: i64,
    /// The campaign the unsubscribe was attributed to.
    pub campaign_id: Option<i64>,
    /// Whether the user was also unsubscribed from the list's channel.
    pub channel_unsubscribe: bool,
}

#[derive(Debug, Clone)]
struct User {
    email: Option<String>,
    user_id: Option<String>,
    data_fields: Map<String, Value>,
    unsubscribed_channels: Vec<i64>,
    unsubscribes: Vec<UnsubscribeRecord>,
}

#[derive(Debug)]
pub(crate) struct List {
    pub details: ListDetails,
    /// Before this instant the list answers `invalidListId` (eventual consistency).
    pub visible_at: Option<Instant>,
    /// Referenced by a campaign or journey: `DELETE` answers 409.
    pub in_use: bool,
    members: FastSet<u32>,
}

/// The answer of subscribe and unsubscribe, with every array present as the modern
/// reference example shows (iterable-api.md §3).
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BulkAnswer {
    pub success_count: i64,
    pub fail_count: i64,
    pub created_fields: Vec<String>,
    pub filtered_out_fields: Vec<String>,
    pub invalid_emails: Vec<String>,
    pub invalid_user_ids: Vec<String>,
    pub failed_updates: FailedUpdates,
}

#[derive(Clone, Copy)]
enum Kind {
    Conflict,
    Forgotten,
    InvalidData,
    NotFound,
}

impl BulkAnswer {
    fn fail(&mut self, kind: Kind, email: Option<&str>, user_id: Option<&str>) {
        let f = &mut self.failed_updates;
        let (emails, ids) = match kind {
            Kind::Conflict => (&mut f.conflict_emails, &mut f.conflict_user_ids),
            Kind::Forgotten => (&mut f.forgotten_emails, &mut f.forgotten_user_ids),
            Kind::InvalidData => (&mut f.invalid_data_emails, &mut f.invalid_data_user_ids),
            Kind::NotFound => (&mut f.not_found_emails, &mut f.not_found_user_ids),
        };
        if let Some(e) = email {
            emails.push(e.to_lowercase());
        }
        if let Some(u) = user_id {
            ids.push(u.to_owned());
        }
        self.fail_count += 1;
    }

    fn invalid(&mut self, email: Option<&str>, user_id: Option<&str>) {
        if let Some(e) = email {
            let e = e.to_lowercase();
            self.invalid_emails.push(e.clone());
            self.failed_updates.invalid_emails.push(e);
        }
        if let Some(u) = user_id {
            self.invalid_user_ids.push(u.to_owned());
            self.failed_updates.invalid_user_ids.push(u.to_owned());
        }
        self.fail_count += 1;
    }
}

/// How a subscriber maps onto the project's users.
enum Resolved {
    Existing {
        idx: u32,
        set_email: Option<String>,
        set_user_id: Option<String>,
    },
    Create {
        email: Option<String>,
        user_id: Option<String>,
    },
}

/// Everything one project holds.
#[derive(Debug)]
pub(crate) struct ProjectData {
    pub project_type: ProjectType,
    pub allow_new_fields: bool,
    users: Vec<Option<User>>,
    by_email: FastMap<String, u32>,
    by_user_id: FastMap<String, u32>,
    pub lists: BTreeMap<i64, List>,
    field_types: FastMap<String, FieldType>,
    forgotten_emails: FastSet<String>,
    forgotten_user_ids: FastSet<String>,
    placeholder_seq: u64,
    placeholder_seed: u64,
}

/// Why a list id is not usable.
pub(crate) enum ListProblem {
    Missing,
}

impl ProjectData {
    pub fn new(project_type: ProjectType, allow_new_fields: bool, seed: u64) -> Self {
        ProjectData {
            project_type,
            allow_new_fields,
            users: Vec::new(),
            by_email: FastMap::default(),
            by_user_id: FastMap::default(),
            lists: BTreeMap::new(),
            field_types: FastMap::default(),
            forgotten_emails: FastSet::default(),
            forgotten_user_ids: FastSet::default(),
            placeholder_seq: 0,
            placeholder_seed: seed,
        }
    }

    pub fn add_list(&mut self, details: ListDetails, visible_at: Option<Instant>) {
        self.lists.insert(
            details.id,
            List {
                details,
                visible_at,
                in_use: false,
                members: FastSet::default(),
            },
        );
    }

    /// The list, if it exists and is visible to the API at `now`.
    pub fn visible_list(&self, id: i64, now: Instant) -> Result<&List, ListProblem> {
        match self.lists.get(&id) {
            Some(l) if l.visible_at.is_none_or(|t| now >= t) => Ok(l),
            _ => Err(ListProblem::Missing),
        }
    }

    pub fn list_details(&self) -> Vec<ListDetails> {
        self.lists.values().map(|l| l.details.clone()).collect()
    }

    /// Members as `getUsers` names them.
    pub fn members(&self, list: &List, prefer_user_id: bool) -> Vec<String> {
        let mut idx: Vec<u32> = list.members.iter().copied().collect();
        idx.sort_unstable();
        idx.into_iter()
            .filter_map(|i| self.users.get(i as usize).and_then(Option::as_ref))
            .filter_map(|u| self.display_id(u, prefer_user_id))
            .collect()
    }

    fn display_id(&self, u: &User, prefer_user_id: bool) -> Option<String> {
        match self.project_type {
            ProjectType::UserId => u.user_id.clone().or_else(|| u.email.clone()),
            ProjectType::Email => u.email.clone(),
            ProjectType::Hybrid if prefer_user_id => u.user_id.clone().or_else(|| u.email.clone()),
            ProjectType::Hybrid => u.email.clone().or_else(|| u.user_id.clone()),
        }
    }

    pub fn list_size(&self, list: &List) -> usize {
        list.members.len()
    }

    fn find(&self, email: Option<&str>, user_id: Option<&str>) -> Option<u32> {
        let by_id = user_id.and_then(|u| self.by_user_id.get(u).copied());
        let by_email = email.and_then(|e| self.by_email.get(lower(e).as_ref()).copied());
        match self.project_type {
            ProjectType::Email => by_email.or(if email.is_none() { by_id } else { None }),
            ProjectType::UserId | ProjectType::Hybrid => {
                by_id.or(if user_id.is_none() { by_email } else { None })
            }
        }
    }

    /// The profile of the user `email` or `user_id` designates.
    pub fn profile(&self, email: Option<&str>, user_id: Option<&str>) -> Option<UserProfile> {
        let idx = match (email, user_id) {
            (Some(e), _) => self.by_email.get(&e.to_lowercase()).copied(),
            (None, Some(u)) => self.by_user_id.get(u).copied(),
            (None, None) => None,
        }?;
        self.profile_at(idx)
    }

    fn profile_at(&self, idx: u32) -> Option<UserProfile> {
        let u = self.users.get(idx as usize)?.as_ref()?;
        let list_ids = self
            .lists
            .values()
            .filter(|l| l.members.contains(&idx))
            .map(|l| l.details.id)
            .collect();
        Some(UserProfile {
            email: u.email.clone(),
            user_id: u.user_id.clone(),
            data_fields: u.data_fields.clone(),
            list_ids,
            unsubscribed_channel_ids: u.unsubscribed_channels.clone(),
            unsubscribes: u.unsubscribes.clone(),
        })
    }

    pub fn all_profiles(&self) -> Vec<UserProfile> {
        (0..self.users.len() as u32)
            .filter_map(|i| self.profile_at(i))
            .collect()
    }

    /// GDPR-forgets a user: the profile and memberships go, the identifiers are remembered and
    /// never accepted again.
    pub fn forget(&mut self, email: Option<&str>, user_id: Option<&str>) {
        let email = email.map(str::to_lowercase);
        let idx = match (&email, user_id) {
            (Some(e), _) => self.by_email.get(e).copied(),
            (None, Some(u)) => self.by_user_id.get(u).copied(),
            (None, None) => None,
        };
        if let Some(e) = &email {
            self.forgotten_emails.insert(e.clone());
        }
        if let Some(u) = user_id {
            self.forgotten_user_ids.insert(u.to_owned());
        }
        let Some(idx) = idx else { return };
        if let Some(user) = self.users.get_mut(idx as usize).and_then(Option::take) {
            if let Some(e) = user.email {
                if self.by_email.get(&e) == Some(&idx) {
                    self.by_email.remove(&e);
                }
                self.forgotten_emails.insert(e);
            }
            if let Some(u) = user.user_id {
                if self.by_user_id.get(&u) == Some(&idx) {
                    self.by_user_id.remove(&u);
                }
                self.forgotten_user_ids.insert(u);
            }
        }
        for list in self.lists.values_mut() {
            list.members.remove(&idx);
        }
    }

    fn is_forgotten(&self, email: Option<&str>, user_id: Option<&str>) -> bool {
        if self.forgotten_emails.is_empty() && self.forgotten_user_ids.is_empty() {
            return false;
        }
        email.is_some_and(|e| self.forgotten_emails.contains(&e.to_lowercase()))
            || user_id.is_some_and(|u| self.forgotten_user_ids.contains(u))
    }

    /// Reports malformed identifiers; true when the subscriber may go on.
    fn check_identifiers(
        &self,
        answer: &mut BulkAnswer,
        email: Option<&str>,
        user_id: Option<&str>,
    ) -> bool {
        let bad_email = email.filter(|e| !valid_email(e));
        let bad_id = user_id.filter(|u| !valid_user_id(u));
        if bad_email.is_some() || bad_id.is_some() {
            answer.invalid(bad_email, bad_id);
            return false;
        }
        if email.is_none() && user_id.is_none() {
            // Nothing identifies the subscriber: reported as an empty identifier of the
            // project's primary kind.
            match self.project_type {
                ProjectType::UserId => answer.invalid(None, Some("")),
                _ => answer.invalid(Some(""), None),
            }
            return false;
        }
        true
    }

    fn resolve(
        &self,
        email: Option<&str>,
        user_id: Option<&str>,
        prefer_user_id: bool,
        existing_only: bool,
    ) -> Result<Resolved, Kind> {
        let email_lc = email.map(lower);
        let by_email = email_lc
            .as_ref()
            .and_then(|e| self.by_email.get(e.as_ref()).copied());
        let by_id = user_id.and_then(|u| self.by_user_id.get(u).copied());
        let user = |i: u32| self.users[i as usize].as_ref();
        let existing = |idx: u32, set_email: Option<String>, set_user_id: Option<String>| {
            Ok(Resolved::Existing {
                idx,
                set_email,
                set_user_id,
            })
        };
        match self.project_type {
            // Email wins; a userId alongside it is written onto the profile; updateExistingUsersOnly
            // is not respected (iterable-api.md §6.2).
            ProjectType::Email => match (email_lc, by_email) {
                (Some(_), Some(idx)) => existing(idx, None, user_id.map(str::to_owned)),
                (Some(e), None) => Ok(Resolved::Create {
                    email: Some(e.into_owned()),
                    user_id: user_id.map(str::to_owned),
                }),
                (None, _) => match by_id {
                    Some(idx) => existing(idx, None, None),
                    None if prefer_user_id => Ok(Resolved::Create {
                        email: None,
                        user_id: user_id.map(str::to_owned),
                    }),
                    None => Err(Kind::NotFound),
                },
            },
            ProjectType::UserId => match (user_id, by_id) {
                (Some(_), Some(idx)) => existing(idx, email_lc.map(Cow::into_owned), None),
                (Some(u), None) if !existing_only => Ok(Resolved::Create {
                    email: email_lc.map(Cow::into_owned),
                    user_id: Some(u.to_owned()),
                }),
                (Some(_), None) => Err(Kind::NotFound),
                (None, _) => by_email.map_or(Err(Kind::NotFound), |idx| existing(idx, None, None)),
            },
            ProjectType::Hybrid => match (by_email, by_id) {
                (Some(a), Some(b)) if a != b => Err(Kind::Conflict),
                (Some(a), Some(_)) => existing(a, None, None),
                (Some(a), None) => match (user_id, user(a).and_then(|u| u.user_id.as_deref())) {
                    (Some(_), Some(_)) => Err(Kind::Conflict),
                    (Some(u), None) => existing(a, None, Some(u.to_owned())),
                    (None, _) => existing(a, None, None),
                },
                (None, Some(b)) => existing(b, email_lc.map(Cow::into_owned), None),
                (None, None) if existing_only => Err(Kind::NotFound),
                (None, None) => Ok(Resolved::Create {
                    email: email_lc.map(Cow::into_owned),
                    user_id: user_id.map(str::to_owned),
                }),
            },
        }
    }

    fn placeholder_email(&mut self) -> String {
        self.placeholder_seq += 1;
        let a = crate::rng::mix(self.placeholder_seed, self.placeholder_seq);
        let b = crate::rng::mix(a, self.placeholder_seq);
        format!("{a:016x}{b:016x}@placeholder.email")
    }

    fn set_email(&mut self, idx: u32, email: String) {
        let unique = self.project_type != ProjectType::UserId;
        if let Some(user) = self.users[idx as usize].as_mut() {
            if let Some(old) = user.email.take()
                && self.by_email.get(&old) == Some(&idx)
            {
                self.by_email.remove(&old);
            }
            user.email = Some(email.clone());
        }
        if unique {
            self.by_email.insert(email, idx);
        } else {
            self.by_email.entry(email).or_insert(idx);
        }
    }

    fn set_user_id(&mut self, idx: u32, user_id: String) {
        if let Some(user) = self.users[idx as usize].as_mut() {
            if let Some(old) = user.user_id.take()
                && self.by_user_id.get(&old) == Some(&idx)
            {
                self.by_user_id.remove(&old);
            }
            user.user_id = Some(user_id.clone());
        }
        // Email projects do not enforce userId uniqueness: the first holder stays findable.
        if self.project_type == ProjectType::Email {
            self.by_user_id.entry(user_id).or_insert(idx);
        } else {
            self.by_user_id.insert(user_id, idx);
        }
    }

    fn apply(&mut self, resolved: Resolved) -> u32 {
        match resolved {
            Resolved::Existing {
                idx,
                set_email,
                set_user_id,
            } => {
                if let Some(e) = set_email {
                    let same = self.users[idx as usize]
                        .as_ref()
                        .is_some_and(|u| u.email.as_deref() == Some(e.as_str()));
                    if !same {
                        self.set_email(idx, e);
                    }
                }
                if let Some(u) = set_user_id {
                    let same = self.users[idx as usize]
                        .as_ref()
                        .is_some_and(|x| x.user_id.as_deref() == Some(u.as_str()));
                    if !same {
                        self.set_user_id(idx, u);
                    }
                }
                idx
            }
            Resolved::Create { email, user_id } => {
                let email = match (email, self.project_type) {
                    (Some(e), _) => Some(e),
                    (None, ProjectType::Email) => Some(self.placeholder_email()),
                    (None, _) => None,
                };
                let idx = self.users.len() as u32;
                self.users.push(Some(User {
                    email: None,
                    user_id: None,
                    data_fields: Map::new(),
                    unsubscribed_channels: Vec::new(),
                    unsubscribes: Vec::new(),
                }));
                if let Some(e) = email {
                    self.set_email(idx, e);
                }
                if let Some(u) = user_id {
                    self.set_user_id(idx, u);
                }
                idx
            }
        }
    }

    /// `POST /api/lists/subscribe` on a list known to be visible.
    pub fn subscribe(&mut self, req: SubscribeBody<'_>) -> BulkAnswer {
        let mut answer = BulkAnswer::default();
        let list_id = req.list_id;
        // Respected only in userId and hybrid projects (iterable-api.md §2.4).
        let existing_only = req.update_existing_users_only.unwrap_or(false)
            && self.project_type != ProjectType::Email;
        let mut created: Vec<String> = Vec::new();
        let mut filtered: Vec<String> = Vec::new();
        for sub in req.subscribers {
            let email = sub.email.as_deref();
            let user_id = sub.user_id.as_deref();
            if !self.check_identifiers(&mut answer, email, user_id) {
                continue;
            }
            if self.is_forgotten(email, user_id) {
                let fe = email.filter(|e| self.forgotten_emails.contains(&e.to_lowercase()));
                let fu = user_id.filter(|u| self.forgotten_user_ids.contains(*u));
                answer.fail(Kind::Forgotten, fe, fu);
                continue;
            }
            // Only respected in email projects (iterable-api.md §2.4).
            let prefer_user_id =
                sub.prefer_user_id.unwrap_or(false) && self.project_type == ProjectType::Email;
            let resolved = match self.resolve(email, user_id, prefer_user_id, existing_only) {
                Ok(r) => r,
                Err(kind) => {
                    answer.fail(kind, email, user_id);
                    continue;
                }
            };
            let mut data = sub.data_fields.unwrap_or_default().0;
            if !data.is_empty() {
                let check =
                    fields::check(&self.field_types, data.iter().map(|(k, v)| (k.as_ref(), v)));
                if check.mismatch {
                    answer.fail(Kind::InvalidData, email, user_id);
                    continue;
                }
                for (path, ty) in check.new_fields {
                    let top = path.split('.').next().unwrap_or(&path).to_owned();
                    if !self.allow_new_fields && !self.field_types.contains_key(&top) {
                        data.retain(|(k, _)| *k != top.as_str());
                        if !filtered.contains(&top) {
                            filtered.push(top);
                        }
                        continue;
                    }
                    if !created.contains(&path) {
                        created.push(path.clone());
                    }
                    self.field_types.insert(path, ty);
                }
            }
            let idx = self.apply(resolved);
            if !data.is_empty()
                && let Some(user) = self.users[idx as usize].as_mut()
            {
                fields::merge(
                    &mut user.data_fields,
                    data,
                    sub.merge_nested_objects.unwrap_or(false),
                );
            }
            if let Some(list) = self.lists.get_mut(&list_id) {
                list.members.insert(idx);
            }
            answer.success_count += 1;
        }
        answer.created_fields = created;
        answer.filtered_out_fields = filtered;
        answer
    }

    /// `POST /api/lists/unsubscribe` on a list known to be visible. Never creates users.
    pub fn unsubscribe(&mut self, req: UnsubscribeBody<'_>) -> BulkAnswer {
        let mut answer = BulkAnswer::default();
        let channel = req.channel_unsubscribe.unwrap_or(false);
        let record = channel || req.campaign_id.is_some();
        for sub in req.subscribers {
            let email = sub.email.as_deref();
            let user_id = sub.user_id.as_deref();
            if !self.check_identifiers(&mut answer, email, user_id) {
                continue;
            }
            if self.is_forgotten(email, user_id) {
                let fe = email.filter(|e| self.forgotten_emails.contains(&e.to_lowercase()));
                let fu = user_id.filter(|u| self.forgotten_user_ids.contains(*u));
                answer.fail(Kind::Forgotten, fe, fu);
                continue;
            }
            let Some(idx) = self.find(email, user_id) else {
                answer.fail(Kind::NotFound, email, user_id);
                continue;
            };
            if let Some(list) = self.lists.get_mut(&req.list_id) {
                list.members.remove(&idx);
            }
            if record && let Some(user) = self.users[idx as usize].as_mut() {
                user.unsubscribes.retain(|r| r.list_id != req.list_id);
                user.unsubscribes.push(UnsubscribeRecord {
                    list_id: req.list_id,
                    campaign_id: req.campaign_id,
                    channel_unsubscribe: channel,
                });
                if channel && !user.unsubscribed_channels.contains(&EMAIL_CHANNEL_ID) {
                    user.unsubscribed_channels.push(EMAIL_CHANNEL_ID);
                }
            }
            answer.success_count += 1;
        }
        answer
    }
}

/// Lowercases an email, borrowing when it already is lowercase (the common case).
fn lower(email: &str) -> Cow<'_, str> {
    if email.chars().any(char::is_uppercase) {
        Cow::Owned(email.to_lowercase())
    } else {
        Cow::Borrowed(email)
    }
}

/// A `ListDetails` for a new list.
pub(crate) fn new_list_details(
    id: i64,
    name: String,
    description: Option<String>,
    list_type: ListType,
    created_at: i64,
) -> ListDetails {
    ListDetails {
        id,
        name,
        created_at,
        list_type,
        description,
        is_global_suppression_enabled: (list_type == ListType::Suppression).then_some(false),
    }
}
