//! Pacing: at most so many requests a second, shared by a client's clones.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Hands out request slots at least `1 / per_second` apart: a token
/// bucket that holds one token, so a long idle spell buys no burst (a
/// reconcile after a quiet hour starts at the same pace as one that never
/// stopped). Slots are taken in call order, and each caller waits for its
/// own outside the lock.
#[derive(Debug)]
pub(super) struct Pacer {
    interval: Duration,
    next_slot: Mutex<Option<Instant>>,
}

impl Pacer {
    pub(super) fn new(per_second: NonZeroU32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.get(),
            next_slot: Mutex::new(None),
        }
    }

    /// Waits until this caller may send its request.
    pub(super) async fn wait(&self) {
        let slot = {
            let mut next = self.next_slot.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = next.map_or(now, |next| next.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_second(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn eleven_slots_at_five_a_second_span_two_seconds_and_the_first_is_free() {
        let pacer = Pacer::new(per_second(5));
        let start = Instant::now();
        pacer.wait().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        for _ in 1..11 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_pace() {
        let pacer = std::sync::Arc::new(Pacer::new(per_second(5)));
        let start = Instant::now();
        let waits = (0..6).map(|_| {
            let pacer = pacer.clone();
            tokio::spawn(async move {
                pacer.wait().await;
                start.elapsed()
            })
        });
        let mut at: Vec<Duration> = futures_util::future::join_all(waits)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        at.sort();
        let expected: Vec<Duration> = (0..6).map(|i| Duration::from_millis(200 * i)).collect();
        assert_eq!(at, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_spell_buys_no_burst() {
        let pacer = Pacer::new(per_second(5));
        pacer.wait().await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        let start = Instant::now();
        pacer.wait().await;
        pacer.wait().await;
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }
}
