//! Member counts per audience, for the `lists` command and other read-only views.

use serde::Serialize;

use super::{SqliteStore, load_audiences};
use crate::StoreError;

/// What the ledger holds for one audience: how many identities it wants in the list, how many
/// of those Iterable confirmed, and what is still to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberCounts {
    /// Destination name.
    pub destination: String,
    /// Audience key.
    pub audience_key: String,
    /// The Iterable list the audience is bound to, if resolved.
    pub list_id: Option<i64>,
    /// Whether this service created that list.
    pub list_created: bool,
    /// Identities whose desired state is `in`.
    pub desired_in: u64,
    /// Of those, the ones Iterable answered for at their latest version (delivered, or final
    /// without an error such as a GDPR-forgotten user).
    pub settled_in: u64,
    /// Identities whose subscribe is still to be sent.
    pub pending_subscribe: u64,
    /// Identities whose unsubscribe is still to be sent.
    pub pending_unsubscribe: u64,
    /// Identities whose latest change Iterable rejected (replayable).
    pub rejected: u64,
}

const COUNTS: &str = "SELECT
        coalesce(sum(desired = 1), 0),
        coalesce(sum(desired = 1 AND dirty = 0 AND rejected = 0), 0),
        coalesce(sum(desired = 1 AND dirty = 1), 0),
        coalesce(sum(desired = 0 AND dirty = 1), 0),
        coalesce(sum(rejected = 1), 0)
     FROM members WHERE audience_id = ?1";

impl SqliteStore {
    /// Member counts of every audience, or of one destination's, ordered by destination and
    /// audience key. One scan of each audience's ledger rows.
    pub fn member_counts(
        &self,
        destination: Option<&str>,
    ) -> Result<Vec<MemberCounts>, StoreError> {
        let inner = self.applied()?;
        let mut audiences = load_audiences(&inner.conn)?;
        audiences.retain(|a| destination.is_none_or(|d| a.destination == d));
        audiences.sort_by(|x, y| {
            (&x.destination, &x.audience_key).cmp(&(&y.destination, &y.audience_key))
        });
        let mut stmt = inner.conn.prepare_cached(COUNTS)?;
        let mut out = Vec::with_capacity(audiences.len());
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        for a in audiences {
            let (desired_in, settled_in, pending_subscribe, pending_unsubscribe, rejected) =
                stmt.query_row([a.id.0], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })?;
            out.push(MemberCounts {
                destination: a.destination,
                audience_key: a.audience_key,
                list_id: a.list_id,
                list_created: a.list_created,
                desired_in: n(desired_in),
                settled_in: n(settled_in),
                pending_subscribe: n(pending_subscribe),
                pending_unsubscribe: n(pending_unsubscribe),
                rejected: n(rejected),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Change, Direction, SqliteOptions, SqliteStore, Store};

    fn change(identity: &str, direction: Direction, id: &str, ts: i64) -> Change {
        Change {
            destination: "engage".into(),
            audience_key: "vip".into(),
            identity: identity.into(),
            email: None,
            user_id: Some(identity.into()),
            direction,
            data_fields: None,
            message_id: id.into(),
            timestamp: ts,
            audience_settings: None,
        }
    }

    #[test]
    fn member_counts_follow_desired_state_and_confirmation() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("s.db"), SqliteOptions::default()).unwrap();
        store
            .accept(
                &[
                    change("a", Direction::In, "m1", 1),
                    change("b", Direction::In, "m2", 1),
                    change("c", Direction::Out, "m3", 1),
                ],
                10,
            )
            .unwrap();
        let id = store.ensure_audience("engage", "vip").unwrap().id;
        let rows = store.claim(id, Direction::In, 10, 1).unwrap();
        let refs: Vec<_> = rows.iter().map(|r| r.row.clone()).collect();
        store.confirm(&refs, "req-1", 11).unwrap();

        let counts = store.member_counts(Some("engage")).unwrap();
        assert_eq!(counts.len(), 1);
        let c = &counts[0];
        assert_eq!(c.audience_key, "vip");
        assert_eq!(c.desired_in, 2);
        assert_eq!(c.settled_in, 1);
        assert_eq!(c.pending_subscribe, 1);
        assert_eq!(c.pending_unsubscribe, 1);
        assert_eq!(c.rejected, 0);
        assert!(store.member_counts(Some("other")).unwrap().is_empty());
    }
}
