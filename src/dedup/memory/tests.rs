//! Unit tests of the memory store, on an injected clock (no test sleeps).

use super::*;
use crate::clock::ManualClock;

const SCOPE: [u8; 16] = [7; 16];
const LONG: Duration = Duration::from_secs(60);

fn key(id: &str) -> DedupKey {
    DedupKey::for_id(&SCOPE, id.as_bytes())
}

/// A store on a clock that moves only when told to.
fn manual(capacity: u64) -> (MemoryStore, Arc<ManualClock>) {
    let clock = ManualClock::new(0, Duration::from_secs(1));
    (MemoryStore::with_clock(capacity, clock.clone()), clock)
}

/// The `n`th key of shard `shard` (keys are digests: any bytes will do).
fn in_shard(shard: u8, n: u32) -> DedupKey {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&n.to_le_bytes());
    key[4..8].copy_from_slice(&n.wrapping_mul(0x9E37_79B9).to_le_bytes());
    key[8] = shard;
    DedupKey(key)
}

fn deliver(store: &MemoryStore, key: DedupKey, ttl: Duration) {
    let t = claimed(store.claim_now(key, Duration::from_secs(35)));
    store.complete_now(key, t, ttl);
}

fn claimed(outcome: ClaimOutcome) -> ClaimToken {
    match outcome {
        ClaimOutcome::Claimed(t) => t,
        other => panic!("expected a claim, got {other:?}"),
    }
}

#[tokio::test]
async fn absent_in_flight_delivered() {
    let store = MemoryStore::new(100);
    let t = claimed(store.claim(key("a"), LONG).await.unwrap());
    assert_eq!(
        store.claim(key("a"), LONG).await.unwrap(),
        ClaimOutcome::InFlight
    );
    store.complete(key("a"), t, LONG).await.unwrap();
    assert_eq!(
        store.claim(key("a"), LONG).await.unwrap(),
        ClaimOutcome::Delivered
    );
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn release_lets_a_retry_through_and_ignores_foreign_tokens() {
    let store = MemoryStore::new(100);
    let t = claimed(store.claim(key("a"), LONG).await.unwrap());
    store
        .release(key("a"), ClaimToken(t.0 + 1000))
        .await
        .unwrap();
    assert_eq!(
        store.claim(key("a"), LONG).await.unwrap(),
        ClaimOutcome::InFlight
    );
    store.release(key("a"), t).await.unwrap();
    claimed(store.claim(key("a"), LONG).await.unwrap());
}

#[tokio::test]
async fn claims_lapse_by_themselves() {
    let (store, clock) = manual(100);
    claimed(
        store
            .claim(key("a"), Duration::from_millis(50))
            .await
            .unwrap(),
    );
    clock.advance(Duration::from_millis(120));
    claimed(store.claim(key("a"), LONG).await.unwrap());
}

#[tokio::test]
async fn late_completion_after_a_lapse_still_marks_delivered() {
    let (store, clock) = manual(100);
    let t = claimed(
        store
            .claim(key("a"), Duration::from_millis(30))
            .await
            .unwrap(),
    );
    clock.advance(Duration::from_millis(80));
    store.complete(key("a"), t, LONG).await.unwrap();
    assert_eq!(
        store.claim(key("a"), LONG).await.unwrap(),
        ClaimOutcome::Delivered
    );
}

#[tokio::test]
async fn a_lapsed_claim_taken_over_is_not_completed_by_its_old_holder() {
    let (store, clock) = manual(100);
    let old = claimed(
        store
            .claim(key("a"), Duration::from_millis(30))
            .await
            .unwrap(),
    );
    clock.advance(Duration::from_millis(80));
    let new = claimed(store.claim(key("a"), LONG).await.unwrap());
    store.release(key("a"), old).await.unwrap();
    assert_eq!(
        store.claim(key("a"), LONG).await.unwrap(),
        ClaimOutcome::InFlight
    );
    store.complete(key("a"), new, LONG).await.unwrap();
    assert_eq!(
        store.claim(key("a"), LONG).await.unwrap(),
        ClaimOutcome::Delivered
    );
}

#[test]
fn concurrent_claims_have_one_winner() {
    let store = MemoryStore::new(1000);
    let winners = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| s.spawn(|| store.claim_now(key("race"), LONG)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|o| matches!(o, ClaimOutcome::Claimed(_)))
            .count()
    });
    assert_eq!(winners, 1);
}

#[test]
fn capacity_is_bounded_and_early_evictions_are_counted() {
    let store = MemoryStore::new(SHARDS as u64 * 4);
    for i in 0..2000 {
        let t = match store.claim_now(key(&format!("k{i}")), LONG) {
            ClaimOutcome::Claimed(t) => t,
            other => panic!("{other:?}"),
        };
        store.complete_now(key(&format!("k{i}")), t, LONG);
    }
    assert!(store.len() <= SHARDS as u64 * 4);
    assert!(store.early_evictions() >= 2000 - SHARDS as u64 * 4);
}

#[test]
fn expired_entries_make_room_without_counting_as_early() {
    let per_shard = 100u64;
    let (store, clock) = manual(SHARDS as u64 * per_shard);
    for i in 0..SHARDS as u64 * per_shard {
        store.claim_now(key(&format!("short{i}")), Duration::from_millis(10));
    }
    clock.advance(Duration::from_millis(40));
    assert_eq!(store.len(), 0, "all expired");
    let before = store.early_evictions();
    let fresh = SHARDS as u64 * per_shard / 2;
    for i in 0..fresh {
        claimed(store.claim_now(key(&format!("fresh{i}")), LONG));
    }
    assert_eq!(store.len(), fresh);
    assert_eq!(
        store.early_evictions(),
        before,
        "expired entries were swept, not evicted"
    );
}

/// 2^32 ticks of 10 ms: where the old `u32` expiry clock ran out (≈ 497 days).
const U32_TICKS_OF_10MS: Duration = Duration::from_millis((1u64 << 32) * 10);

#[test]
fn expiries_hold_at_any_uptime_including_past_497_days() {
    for start in [
        Duration::ZERO,
        U32_TICKS_OF_10MS - Duration::from_secs(30),
        U32_TICKS_OF_10MS + Duration::from_secs(1),
        Duration::from_secs(100 * 365 * 24 * 3600),
    ] {
        let clock = ManualClock::new(0, start);
        let store = MemoryStore::with_clock(100, clock.clone());
        let t = claimed(store.claim_now(key("a"), LONG));
        store.complete_now(key("a"), t, LONG);
        // Crosses 2^32 ticks for the second start.
        clock.advance(LONG - Duration::from_millis(1));
        assert_eq!(
            store.claim_now(key("a"), LONG),
            ClaimOutcome::Delivered,
            "at {start:?}"
        );
        assert_eq!(store.len(), 1, "at {start:?}");
        clock.advance(Duration::from_millis(1));
        claimed(store.claim_now(key("a"), LONG));
    }
}

#[test]
fn an_in_flight_claim_lapses_exactly_at_its_ttl_on_an_injected_clock() {
    let clock = ManualClock::new(0, U32_TICKS_OF_10MS);
    let store = MemoryStore::with_clock(100, clock.clone());
    claimed(store.claim_now(key("a"), Duration::from_secs(6)));
    clock.advance(Duration::from_millis(5_999));
    assert_eq!(store.claim_now(key("a"), LONG), ClaimOutcome::InFlight);
    clock.advance(Duration::from_millis(1));
    claimed(store.claim_now(key("a"), LONG));
}

#[tokio::test]
async fn settlements_wake_registered_waiters() {
    let store = MemoryStore::new(100);
    let t = claimed(store.claim_now(key("a"), LONG));
    let waiting = store.watch(key("a"));
    assert_eq!(store.inner.waiters.waiting(), 1);
    store.complete_now(key("a"), t, LONG);
    tokio::time::timeout(Duration::from_secs(5), waiting.wait())
        .await
        .expect("woken by the promote");
    assert_eq!(store.inner.waiters.waiting(), 0, "unregistered when done");
}

#[test]
fn entries_stay_compact() {
    // Key, expiry, token, two list links and a class: 40 bytes of arena, 4 of table.
    assert_eq!(shard::ENTRY_BYTES, 40);
}

fn held(store: &MemoryStore, key: DedupKey) -> bool {
    let now = store.now();
    store
        .shard(&key)
        .shard
        .get(&key.0)
        .is_some_and(|s| s.expires > now)
}

#[test]
fn a_full_store_keeps_accepting_claims_by_evicting_the_oldest_expiring_first() {
    let (store, clock) = manual(SHARDS as u64 * 3);
    let k = |n| in_shard(5, n);
    // Shard 5 holds three delivered keys of two TTLs: k2 expires first, then k1, then k3.
    deliver(&store, k(1), Duration::from_secs(3600));
    clock.advance(Duration::from_secs(1));
    deliver(&store, k(2), Duration::from_secs(60));
    deliver(&store, k(3), Duration::from_secs(3600));
    claimed(store.claim_now(k(4), LONG));
    assert!(!held(&store, k(2)) && held(&store, k(1)) && held(&store, k(3)));
    claimed(store.claim_now(k(5), LONG));
    assert!(!held(&store, k(1)) && held(&store, k(3)));
    // Delivered keys go before in-flight claims, even those expiring sooner.
    claimed(store.claim_now(k(6), LONG));
    assert!(!held(&store, k(3)));
    // Only claims left: the oldest claim goes.
    claimed(store.claim_now(k(7), LONG));
    assert!(!held(&store, k(4)));
    assert!(held(&store, k(5)) && held(&store, k(6)) && held(&store, k(7)));
    assert_eq!(store.early_evictions(), 4);
    assert_eq!(store.len(), 3);
}

#[test]
fn early_evictions_are_counted_exactly() {
    let (store, clock) = manual(SHARDS as u64 * 2);
    for n in 0..10 {
        deliver(&store, in_shard(9, n), LONG);
    }
    assert_eq!(store.early_evictions(), 8);
    assert_eq!(store.len(), 2);
    // Expired entries make room without counting.
    clock.advance(LONG);
    for n in 10..12 {
        deliver(&store, in_shard(9, n), LONG);
    }
    assert_eq!(store.early_evictions(), 8);
    // Another shard is not affected by this one being full.
    deliver(&store, in_shard(10, 0), LONG);
    assert_eq!(store.early_evictions(), 8);
    deliver(&store, in_shard(9, 12), LONG);
    assert_eq!(store.early_evictions(), 9);
    assert_eq!(store.len(), 3);
}

#[test]
fn len_is_exact_after_inserts_expiries_evictions_and_forgets() {
    let (store, clock) = manual(SHARDS as u64 * 4);
    assert!(store.is_empty());
    for shard in 0..8u8 {
        for n in 0..3 {
            deliver(&store, in_shard(shard, n), Duration::from_secs(10));
        }
    }
    assert_eq!(store.len(), 24);
    // An in-flight claim counts; its promotion does not count twice.
    let t = claimed(store.claim_now(in_shard(0, 99), Duration::from_secs(5)));
    assert_eq!(store.len(), 25);
    store.complete_now(in_shard(0, 99), t, LONG);
    assert_eq!(store.len(), 25);
    // Evictions: shard 1 gets two more keys past its four.
    for n in 3..6 {
        deliver(&store, in_shard(1, n), LONG);
    }
    assert_eq!(store.early_evictions(), 2);
    assert_eq!(store.len(), 26);
    // Forgets, including one of an absent key, and a release.
    store.forget_now(in_shard(2, 0));
    store.forget_now(in_shard(2, 0));
    store.forget_now(in_shard(40, 0));
    let t = claimed(store.claim_now(in_shard(3, 50), LONG));
    store.release_now(in_shard(3, 50), t);
    assert_eq!(store.len(), 25);
    // Expiries: the 10 s keys go, the long ones stay.
    clock.advance(Duration::from_secs(10));
    assert_eq!(store.len(), 4, "k99 in shard 0 and keys 3..6 of shard 1");
    clock.advance(LONG);
    assert_eq!(store.len(), 0);
    assert!(store.inner.shards.iter().all(|l| lock(l).shard.len() == 0));
}

#[test]
fn keys_are_scoped() {
    let a = DedupKey::for_id(&[1; 16], b"evt");
    let b = DedupKey::for_id(&[2; 16], b"evt");
    let c = DedupKey::for_body(&[1; 16], b"evt");
    assert_ne!(a, b);
    assert_ne!(a, c);
}
