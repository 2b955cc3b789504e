//! Helpers of the delivery engine tests: virtual time (a manual clock moved by a recording
//! sleeper), a target on the recording upstream, events, bounded waits.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hookgate::clock::ManualClock;
use hookgate::delivery::*;
use hookgate::sender::deliver::{Sender, Sleeper};
use hookgate::sender::retry::RetryPolicy;
use hookgate::sender::Signer;

/// Moves the manual clock by each requested wait, at once, and remembers the wait.
pub(crate) struct RecordingSleeper {
    clock: Arc<ManualClock>,
    slept: Mutex<Vec<Duration>>,
}

impl Sleeper for RecordingSleeper {
    fn sleep(&self, delay: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            self.slept.lock().unwrap().push(delay);
            self.clock.advance(delay);
        })
    }
}

pub(crate) fn spec(url: &str, retry: &str, preset: &str) -> TargetSpec {
    TargetSpec {
        name: "t".into(),
        url: url.parse().unwrap(),
        signer: Some(Signer::for_preset(preset, Some("s3cret-value")).unwrap()),
        retry: RetryPolicy::parse(retry).unwrap(),
        health: HealthRules::for_preset(preset),
        concurrency: 4,
        client: None,
        hold_when_stopped: false,
    }
}

pub(crate) fn event(id: &str, not_before_ms: Option<i64>) -> NewDelivery {
    NewDelivery {
        target: "t".into(),
        event_id: id.into(),
        event_type: Some("scan.completed".into()),
        body: Bytes::from(format!("{{\"event\":\"{id}\"}}")),
        headers: Vec::new(),
        not_before_ms,
    }
}

/// Opens the store, waiting (bounded) for a previous owner in this process to let go.
pub(crate) fn open_store(dir: &Path) -> SqliteStore {
    for _ in 0..200 {
        match SqliteStore::open(dir) {
            Err(StoreError::Locked { .. }) => std::thread::sleep(Duration::from_millis(10)),
            other => return other.unwrap(),
        }
    }
    panic!("the store stayed locked")
}

/// Virtual time: a manual clock and the recording sleeper that moves it.
pub(crate) struct Virtual {
    pub clock: Arc<ManualClock>,
    pub sleeper: Arc<RecordingSleeper>,
}

impl Virtual {
    pub(crate) fn at(wall_ms: i64) -> Self {
        let clock = ManualClock::new(wall_ms, Duration::ZERO);
        let sleeper = Arc::new(RecordingSleeper {
            clock: clock.clone(),
            slept: Mutex::new(Vec::new()),
        });
        Virtual { clock, sleeper }
    }

    pub(crate) fn slept(&self) -> Vec<Duration> {
        self.sleeper.slept.lock().unwrap().clone()
    }

    pub(crate) async fn engine(&self, dir: &Path, spec: TargetSpec) -> Engine {
        let io = EngineIo {
            sender: Sender::default(),
            clock: self.clock.clone(),
            sleeper: self.sleeper.clone(),
        };
        let store = Arc::new(open_store(dir));
        Engine::start(store, vec![spec], EngineOptions::default(), io)
            .await
            .unwrap()
    }
}

/// Waits (at most 10 s) until the delivery leaves `pending`; returns it.
pub(crate) async fn settled(engine: &Engine, id: DeliveryId) -> DeliveryDetail {
    for _ in 0..2000 {
        let detail = engine.get(id).await.unwrap().unwrap();
        if detail.delivery.state != DeliveryState::Pending {
            return detail;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("delivery {id} still pending after 10 s")
}

/// Never returns: the engine waits only for wake-ups.
pub(crate) struct Never;

impl Sleeper for Never {
    fn sleep(&self, _: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::pending())
    }
}
