//! Generated event streams: every figure's input is produced here, deterministically.

use std::fmt::Write as _;

/// Audiences of the anchor-shaped stream (as `bench-ref.js` generates them).
pub const AUDS: usize = 10;

/// Event `i` shaped exactly like `generated(i)` in the anchor's `bench-ref.js`: an identify
/// call for `user-{i}` on audience `aud_{i % 10}`, one in seven an exit, with a first name and
/// an `external_audience_id`. `prefix` keeps message ids and users unique across runs.
pub fn anchor_event(out: &mut String, prefix: &str, i: usize) {
    let a = i % AUDS;
    let member = i % 7 != 0;
    let ts = iso_millis(1_760_000_000_000 + i as i64);
    let _ = write!(
        out,
        concat!(
            r#"{{"type":"identify","userId":"{p}user-{i}","messageId":"{p}m-{i}","timestamp":"{ts}","#,
            r#""traits":{{"email":"{p}user-{i}@example.com","aud_{a}":{member},"first_name":"Name{i}"}},"#,
            r#""context":{{"personas":{{"computation_class":"audience","computation_key":"aud_{a}","#,
            r#""computation_id":"aud_id_{a}","external_audience_id":"{list}"}}}}}}"#
        ),
        p = prefix,
        i = i,
        a = a,
        ts = ts,
        member = member,
        list = 5000 + a
    );
}

/// An audience-entry (or exit) event for one user, with `external_audience_id` = `list`.
#[allow(clippy::too_many_arguments)]
pub fn membership_event(
    out: &mut String,
    message_id: &str,
    user: &str,
    audience: &str,
    list: Option<i64>,
    member: bool,
    ts_ms: i64,
) {
    let ts = iso_millis(ts_ms);
    let ext = list
        .map(|l| format!(r#","external_audience_id":"{l}""#))
        .unwrap_or_default();
    let _ = write!(
        out,
        concat!(
            r#"{{"type":"identify","userId":"{user}","messageId":"{mid}","timestamp":"{ts}","#,
            r#""traits":{{"email":"{user}@example.com","{aud}":{member}}},"#,
            r#""context":{{"personas":{{"computation_class":"audience","computation_key":"{aud}"{ext}}}}}}}"#
        ),
        user = user,
        mid = message_id,
        ts = ts,
        aud = audience,
        member = member,
        ext = ext
    );
}

/// `2025-10-09T08:53:20.000Z`-style UTC timestamp of Unix milliseconds.
pub fn iso_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The churn stream of figure 3 (described in BENCHMARKS.md).
///
/// `users` users per audience over `AUDS` audiences; user `u`'s class is `u % 6`:
///
/// | class | before the stream | events in the stream | net change |
/// | --- | --- | --- | --- |
/// | 0 | member | exit, enter | none |
/// | 1 | member | exit | unsubscribe |
/// | 2 | member | exit, enter, exit | unsubscribe |
/// | 3 | not a member | enter | subscribe |
/// | 4 | not a member | enter, exit | none |
/// | 5 | not a member | enter, exit, enter | subscribe |
///
/// Events are emitted in rounds (every user's first event, then every second event, then
/// every third), so a user's events are spread over the stream with other users' in between.
pub struct Churn {
    /// Users per audience.
    pub users: usize,
}

/// What the churn stream implies.
pub struct ChurnStream {
    /// Baseline: members before the stream, as NDJSON (enters).
    pub baseline: String,
    /// The stream itself, as NDJSON.
    pub stream: String,
    /// Events in the stream.
    pub events: usize,
    /// Net subscribes and unsubscribes per audience.
    pub net_in: usize,
    /// Net unsubscribes per audience.
    pub net_out: usize,
}

impl Churn {
    fn pattern(class: usize) -> (bool, &'static [bool]) {
        match class {
            0 => (true, &[false, true]),
            1 => (true, &[false]),
            2 => (true, &[false, true, false]),
            3 => (false, &[true]),
            4 => (false, &[true, false]),
            _ => (false, &[true, false, true]),
        }
    }

    /// Builds the baseline and the stream; `list_base + a` is audience `a`'s list id.
    pub fn build(&self, list_base: i64) -> ChurnStream {
        let mut baseline = String::new();
        let mut stream = String::new();
        let mut events = 0;
        let mut ts = 1_760_000_000_000i64;
        let (mut net_in, mut net_out) = (0, 0);
        for u in 0..self.users {
            let (before, evs) = Self::pattern(u % 6);
            let after = *evs.last().unwrap_or(&before);
            match (before, after) {
                (true, false) => net_out += 1,
                (false, true) => net_in += 1,
                _ => {}
            }
            if before {
                for a in 0..AUDS {
                    ts += 1;
                    membership_event(
                        &mut baseline,
                        &format!("base-{a}-{u}"),
                        &format!("churn-{u}"),
                        &format!("aud_{a}"),
                        Some(list_base + a as i64),
                        true,
                        ts,
                    );
                    baseline.push('\n');
                }
            }
        }
        for round in 0..3 {
            for u in 0..self.users {
                let (_, evs) = Self::pattern(u % 6);
                let Some(&member) = evs.get(round) else {
                    continue;
                };
                for a in 0..AUDS {
                    ts += 1;
                    membership_event(
                        &mut stream,
                        &format!("churn-{a}-{u}-{round}"),
                        &format!("churn-{u}"),
                        &format!("aud_{a}"),
                        Some(list_base + a as i64),
                        member,
                        ts,
                    );
                    stream.push('\n');
                    events += 1;
                }
            }
        }
        ChurnStream {
            baseline,
            stream,
            events,
            net_in,
            net_out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_millis_formats_a_known_instant() {
        assert_eq!(iso_millis(1_760_000_000_000), "2025-10-09T08:53:20.000Z");
        assert_eq!(iso_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
    }

    #[test]
    fn churn_stream_nets_one_third_of_users_each_way() {
        let s = Churn { users: 600 }.build(5000);
        assert_eq!((s.net_in, s.net_out), (200, 200));
        assert_eq!(s.events, 1200 * AUDS);
    }
}
