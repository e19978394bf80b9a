//! One rate limiter per Iterable project (design decision 13): subscribe and unsubscribe
//! share it.
//!
//! With a configured rate, requests are spaced `1/rate` apart and never exceed it. Without
//! one, the rate is found from 429 answers: it doubles every second until the first 429
//! (slow start), then grows additively (5 % or 1 request/s per second, whichever is more)
//! while requests are waiting on it, and halves on a 429 (at most once per half second, so
//! one burst of 429s counts once). A `Retry-After` holds the whole project until it passes.

use std::time::Duration;

use tokio::time::Instant;

/// How the rate is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateMode {
    /// The operator's rate, in requests per second.
    Fixed(f64),
    /// Found from 429s, starting from this rate.
    Adaptive {
        /// Starting rate.
        initial: f64,
        /// Whether the slow-start phase is over (a 429 was seen before).
        settled: bool,
    },
}

/// Lowest rate the adaptive mode goes down to.
const MIN_RATE: f64 = 0.2;
/// Highest rate the adaptive mode goes up to.
const MAX_RATE: f64 = 10_000.0;

#[derive(Debug)]
struct State {
    rate: f64,
    adaptive: bool,
    slow_start: bool,
    next_free: Instant,
    window_start: Instant,
    waited_in_window: bool,
    last_decrease: Option<Instant>,
}

/// A pacing rate limiter, fair in arrival order (tokio's mutex is FIFO).
#[derive(Debug)]
pub struct Limiter {
    state: tokio::sync::Mutex<State>,
}

impl Limiter {
    /// A limiter in the given mode.
    pub fn new(mode: RateMode) -> Self {
        let now = Instant::now();
        let (rate, adaptive, slow_start) = match mode {
            RateMode::Fixed(r) => (r, false, false),
            RateMode::Adaptive { initial, settled } => (initial, true, !settled),
        };
        Limiter {
            state: tokio::sync::Mutex::new(State {
                rate: rate.clamp(MIN_RATE, MAX_RATE.max(rate)),
                adaptive,
                slow_start,
                next_free: now,
                window_start: now,
                waited_in_window: false,
                last_decrease: None,
            }),
        }
    }

    /// Waits for this request's slot.
    pub async fn acquire(&self) {
        let slot = {
            let mut s = self.state.lock().await;
            let now = Instant::now();
            s.grow(now);
            let slot = s.next_free.max(now);
            if slot > now {
                s.waited_in_window = true;
            }
            s.next_free = slot + Duration::from_secs_f64(1.0 / s.rate);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// A 429 came back: halve an adaptive rate; hold the project for `retry_after` if given.
    pub async fn on_rate_limited(&self, retry_after: Option<Duration>) {
        let mut s = self.state.lock().await;
        let now = Instant::now();
        if let Some(d) = retry_after {
            s.next_free = s.next_free.max(now + d);
        }
        if !s.adaptive {
            return;
        }
        s.slow_start = false;
        let recent = s
            .last_decrease
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(500));
        if !recent {
            s.rate = (s.rate / 2.0).max(MIN_RATE);
            s.last_decrease = Some(now);
            s.window_start = now;
            s.waited_in_window = false;
            tracing::debug!(rate = s.rate, "rate limited by Iterable; rate halved");
        }
    }

    /// Holds the project until `until` (e.g. a retryable outage with `Retry-After`).
    pub async fn hold_for(&self, d: Duration) {
        let mut s = self.state.lock().await;
        let now = Instant::now();
        s.next_free = s.next_free.max(now + d);
    }

    /// The current rate, in requests per second, and whether it is still in slow start.
    pub async fn rate(&self) -> (f64, bool) {
        let s = self.state.lock().await;
        (s.rate, s.slow_start)
    }
}

impl State {
    /// Additive increase (or slow-start doubling) once per second while requests waited.
    fn grow(&mut self, now: Instant) {
        if !self.adaptive || now.duration_since(self.window_start) < Duration::from_secs(1) {
            return;
        }
        if self.waited_in_window {
            self.rate = if self.slow_start {
                self.rate * 2.0
            } else {
                self.rate + (self.rate * 0.05).max(1.0)
            }
            .min(MAX_RATE);
        }
        self.window_start = now;
        self.waited_in_window = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fixed_rate_spaces_requests() {
        let l = Limiter::new(RateMode::Fixed(10.0));
        let start = Instant::now();
        for _ in 0..11 {
            l.acquire().await;
        }
        let took = Instant::now().duration_since(start);
        assert!(took >= Duration::from_millis(999), "{took:?}");
        assert!(took < Duration::from_millis(1100), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn adaptive_rate_halves_on_429_and_grows_while_busy() {
        let l = Limiter::new(RateMode::Adaptive {
            initial: 8.0,
            settled: true,
        });
        l.on_rate_limited(None).await;
        assert_eq!(l.rate().await.0, 4.0);
        // A second 429 from the same burst does not halve again.
        l.on_rate_limited(None).await;
        assert_eq!(l.rate().await.0, 4.0);
        for _ in 0..20 {
            l.acquire().await;
        }
        assert!(l.rate().await.0 > 4.0);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_doubles_until_the_first_429() {
        let l = Limiter::new(RateMode::Adaptive {
            initial: 2.0,
            settled: false,
        });
        for _ in 0..40 {
            l.acquire().await;
        }
        let (r, slow) = l.rate().await;
        assert!(slow);
        assert!(r >= 16.0, "{r}");
        l.on_rate_limited(None).await;
        assert!(!l.rate().await.1);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_the_project() {
        let l = Limiter::new(RateMode::Fixed(1000.0));
        l.on_rate_limited(Some(Duration::from_secs(3))).await;
        let start = Instant::now();
        l.acquire().await;
        assert!(Instant::now().duration_since(start) >= Duration::from_secs(3));
    }
}
