//! Leaky buckets: one per project and rule (iterable-api.md §4.2: "Limits in Iterable are
//! calculated using the leaky bucket algorithm").

use std::time::{Duration, Instant};

use crate::config::{Endpoint, Limits};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    last: Instant,
}

/// The buckets of one project, rebuilt whenever the limits change.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    generation: u64,
    buckets: Vec<Option<Bucket>>,
}

impl Buckets {
    /// Admits one request on `endpoint` at `now`, or says how long until it would fit.
    pub fn admit(
        &mut self,
        limits: &Limits,
        generation: u64,
        endpoint: Endpoint,
        now: Instant,
    ) -> Result<(), Duration> {
        if self.generation != generation || self.buckets.len() != limits.rules.len() {
            self.generation = generation;
            self.buckets = vec![None; limits.rules.len()];
        }
        let mut wait = Duration::ZERO;
        let mut applicable = Vec::new();
        for (i, rule) in limits.rules.iter().enumerate() {
            if !rule.endpoints.contains(&endpoint) || rule.per_ms == 0 || rule.requests <= 0.0 {
                continue;
            }
            let rate = rule.requests / (rule.per_ms as f64 / 1000.0); // per second
            let capacity = rule.burst.unwrap_or(rule.requests).max(1.0);
            let b = self.buckets[i].get_or_insert(Bucket {
                level: 0.0,
                last: now,
            });
            let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
            b.level = (b.level - elapsed * rate).max(0.0);
            b.last = now;
            if b.level + 1.0 > capacity {
                let secs = (b.level + 1.0 - capacity) / rate;
                wait = wait.max(Duration::from_secs_f64(secs));
            }
            applicable.push(i);
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        for i in applicable {
            if let Some(b) = self.buckets[i].as_mut() {
                b.level += 1.0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LimitRule;

    // iterable-api.md §4.2: a leaky bucket refuses once full and admits again once drained.
    #[test]
    fn bucket_fills_and_drains() {
        let limits = Limits::none().rule(LimitRule::per_second(
            &[Endpoint::Subscribe, Endpoint::Unsubscribe],
            2.0,
        ));
        let mut b = Buckets::default();
        let t0 = Instant::now();
        assert!(b.admit(&limits, 1, Endpoint::Subscribe, t0).is_ok());
        assert!(b.admit(&limits, 1, Endpoint::Unsubscribe, t0).is_ok());
        let wait = b.admit(&limits, 1, Endpoint::Subscribe, t0).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        assert!(b.admit(&limits, 1, Endpoint::GetLists, t0).is_ok());
        assert!(
            b.admit(
                &limits,
                1,
                Endpoint::Subscribe,
                t0 + Duration::from_millis(500)
            )
            .is_ok()
        );
    }
}
