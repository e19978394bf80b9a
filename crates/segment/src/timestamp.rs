//! ISO-8601 timestamps as Segment clients send them, held as nanoseconds since the Unix epoch.
//!
//! A hand-written parser: the event path parses one or two timestamps per event and a general
//! date library costs more than the rest of the field parsing combined.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant, in nanoseconds since 1970-01-01T00:00:00Z. Ordered, hashable, cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// Why a timestamp string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an ISO-8601 timestamp ({0}): expected e.g. 2024-05-06T09:30:22.829Z")]
pub struct TimestampError(&'static str);

impl Timestamp {
    /// From nanoseconds since the Unix epoch.
    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Timestamp(nanos)
    }

    /// From milliseconds since the Unix epoch (saturating).
    pub const fn from_unix_millis(millis: i64) -> Self {
        Timestamp(millis.saturating_mul(1_000_000))
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// Milliseconds since the Unix epoch (rounded down).
    pub const fn unix_millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }

    /// Parses `YYYY-MM-DD[Thh:mm[:ss[.fraction]]][Z|±hh:mm|±hhmm|±hh]`. A space may replace the
    /// `T`; a missing offset means UTC (what Segment's API assumes).
    pub fn parse(s: &str) -> Result<Self, TimestampError> {
        let b = s.trim().as_bytes();
        let mut p = Cursor { b, i: 0 };
        let year = p.digits(4, "year")? as i64;
        p.expect(b'-', "date separator")?;
        let month = p.digits(2, "month")?;
        p.expect(b'-', "date separator")?;
        let day = p.digits(2, "day")?;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(TimestampError("date out of range"));
        }
        let (mut hour, mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32, 0u32);
        if matches!(p.peek(), Some(b'T' | b't' | b' ')) {
            p.i += 1;
            hour = p.digits(2, "hour")?;
            p.expect(b':', "time separator")?;
            minute = p.digits(2, "minute")?;
            if p.peek() == Some(b':') {
                p.i += 1;
                second = p.digits(2, "second")?;
                if matches!(p.peek(), Some(b'.' | b',')) {
                    p.i += 1;
                    let start = p.i;
                    while let Some(c @ b'0'..=b'9') = p.peek() {
                        if p.i - start < 9 {
                            nanos = nanos * 10 + u32::from(c - b'0');
                        }
                        p.i += 1;
                    }
                    let n = p.i - start;
                    if n == 0 {
                        return Err(TimestampError("empty fraction"));
                    }
                    for _ in n..9 {
                        nanos *= 10;
                    }
                }
            }
            // 60 tolerates a leap second (folded into the next second).
            if hour > 23 || minute > 59 || second > 60 {
                return Err(TimestampError("time out of range"));
            }
        }
        let offset_secs: i64 = match p.peek() {
            None => 0,
            Some(b'Z' | b'z') => {
                p.i += 1;
                0
            }
            Some(sign @ (b'+' | b'-')) => {
                p.i += 1;
                let h = p.digits(2, "offset hours")? as i64;
                let m = match p.peek() {
                    Some(b':') => {
                        p.i += 1;
                        p.digits(2, "offset minutes")? as i64
                    }
                    Some(b'0'..=b'9') => p.digits(2, "offset minutes")? as i64,
                    _ => 0,
                };
                if h > 23 || m > 59 {
                    return Err(TimestampError("offset out of range"));
                }
                let o = h * 3600 + m * 60;
                if sign == b'-' { -o } else { o }
            }
            Some(_) => return Err(TimestampError("unexpected character")),
        };
        if p.i != b.len() {
            return Err(TimestampError("trailing characters"));
        }
        let days = days_from_civil(year, month, day);
        let secs =
            days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
                - offset_secs;
        secs.checked_mul(1_000_000_000)
            .and_then(|n| n.checked_add(i64::from(nanos)))
            .map(Timestamp)
            .ok_or(TimestampError("out of range"))
    }

    /// RFC 3339 in UTC with millisecond precision, as Segment writes it.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1_000_000_000);
        let millis = self.0.rem_euclid(1_000_000_000) / 1_000_000;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ISO-8601 timestamp string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), TimestampError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(TimestampError(what))
        }
    }
    fn digits(&mut self, n: usize, what: &'static str) -> Result<u32, TimestampError> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.peek() {
                Some(c @ b'0'..=b'9') => {
                    v = v * 10 + u32::from(c - b'0');
                    self.i += 1;
                }
                _ => return Err(TimestampError(what)),
            }
        }
        Ok(v)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days-from-civil algorithm (public-domain arithmetic).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_z_with_millis_parses() {
        let t = Timestamp::parse("2024-05-06T09:30:22.829Z").unwrap();
        assert_eq!(t.unix_millis(), 1_714_987_822_829);
        assert_eq!(t.to_rfc3339(), "2024-05-06T09:30:22.829Z");
    }

    #[test]
    fn offsets_are_applied() {
        // The Python client sends `+00:00`; other clients send local offsets.
        let a = Timestamp::parse("2026-12-03T16:13:18.561+00:00").unwrap();
        let b = Timestamp::parse("2026-12-03T17:13:18.561+01:00").unwrap();
        let c = Timestamp::parse("2026-12-03T11:13:18.561-0500").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn fractions_keep_nanosecond_order() {
        let a = Timestamp::parse("2026-01-01T00:00:00.000000001Z").unwrap();
        let b = Timestamp::parse("2026-01-01T00:00:00.000000002Z").unwrap();
        assert!(a < b);
    }

    #[test]
    fn missing_offset_means_utc_and_date_only_is_midnight() {
        assert_eq!(
            Timestamp::parse("2026-01-01T00:00:00").unwrap(),
            Timestamp::parse("2026-01-01").unwrap()
        );
    }

    #[test]
    fn garbage_and_impossible_dates_are_refused() {
        for s in [
            "",
            "yesterday",
            "2026-02-30T00:00:00Z",
            "2026-01-01T25:00:00Z",
            "2026-01-01Tx",
        ] {
            assert!(Timestamp::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn round_trips_through_days() {
        for days in [-800_000i64, -1, 0, 1, 19_000, 400_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m as u32, d as u32), days);
        }
    }
}
