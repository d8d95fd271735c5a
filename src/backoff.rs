//! The reconnection schedule: exponential backoff with jitter, as socket.io-client computes it.
//!
//! Attempt `n` (from 0) waits `min * factor^n` milliseconds, moved up or down by at most
//! `jitter` of itself, and capped at `max`. The random number is an input, so the schedule is
//! pure and testable.

/// The backoff parameters and the number of attempts made so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// The first delay in ms (`reconnectionDelay`, default 1000).
    pub min_ms: f64,
    /// The cap in ms (`reconnectionDelayMax`, default 5000).
    pub max_ms: f64,
    /// The growth factor per attempt (2).
    pub factor: f64,
    /// The randomization factor in `[0, 1]` (`randomizationFactor`, default 0.5).
    pub jitter: f64,
    attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(1000.0, 5000.0, 0.5)
    }
}

impl Backoff {
    /// A schedule with the given first delay, cap and randomization (factor 2, as socket.io).
    pub fn new(min_ms: f64, max_ms: f64, jitter: f64) -> Self {
        Backoff {
            min_ms: min_ms.max(0.0),
            max_ms: max_ms.max(0.0),
            factor: 2.0,
            jitter: jitter.clamp(0.0, 1.0),
            attempts: 0,
        }
    }

    /// The delay before the next attempt, given a random number in `[0, 1)`; counts the attempt.
    pub fn next_delay(&mut self, random: f64) -> u64 {
        let exponent = i32::try_from(self.attempts).unwrap_or(i32::MAX);
        self.attempts = self.attempts.saturating_add(1);
        let mut ms = self.min_ms * self.factor.powi(exponent);
        if self.jitter > 0.0 {
            let random = if random.is_finite() {
                random.clamp(0.0, 1.0)
            } else {
                0.0
            };
            let deviation = (random * self.jitter * ms).floor();
            // socket.io-client picks the direction from the same random number's first digit.
            ms = if ((random * 10.0).floor() as u64) & 1 == 0 {
                ms - deviation
            } else {
                ms + deviation
            };
        }
        let ms = ms.min(self.max_ms).max(0.0);
        if ms.is_finite() {
            ms as u64
        } else {
            self.max_ms as u64
        }
    }

    /// How many delays have been handed out since the last [`Backoff::reset`].
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts over (after a successful connection).
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;

    #[test]
    fn doubles_from_the_first_delay_up_to_the_cap_without_jitter() {
        let mut b = Backoff::new(1000.0, 5000.0, 0.0);
        let delays: Vec<u64> = (0..6).map(|_| b.next_delay(0.9)).collect();
        assert_eq!(delays, [1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(b.attempts(), 6);
        b.reset();
        assert_eq!(b.next_delay(0.0), 1000);
    }

    #[test]
    fn jitter_moves_down_on_even_first_digit_and_up_on_odd() {
        let mut b = Backoff::default();
        // 0.25: digit 2 (even) -> 1000 - floor(0.25*0.5*1000) = 875.
        assert_eq!(b.next_delay(0.25), 875);
        // 0.35: digit 3 (odd) -> 2000 + floor(0.35*0.5*2000) = 2350.
        assert_eq!(b.next_delay(0.35), 2350);
        // 0.99 on 4000: 4000 + 1980 = 5980, capped at 5000.
        assert_eq!(b.next_delay(0.99), 5000);
    }

    #[test]
    fn stays_within_bounds_for_any_random_and_many_attempts() {
        let mut b = Backoff::default();
        for i in 0..10_000u32 {
            let r = f64::from(i % 97) / 97.0;
            let d = b.next_delay(r);
            assert!(d <= 5000, "{d}");
            if i == 0 {
                assert!((500..=1500).contains(&d));
            }
        }
        for r in [f64::NAN, f64::INFINITY, -1.0, 2.0] {
            assert!(b.next_delay(r) <= 5000);
        }
        let mut huge = Backoff::new(1e300, 1e308, 0.0);
        for _ in 0..5 {
            assert!(huge.next_delay(0.5) > 0);
        }
    }
}
