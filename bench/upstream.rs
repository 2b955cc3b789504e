//! The benchmark's minimal upstream: reads the body and answers `200 ok`, on one thread. It
//! counts the requests it served; `GET /__count` answers that count (and is not counted), so
//! the benchmark can check that every request answered reached the upstream.
//!
//!     cargo run --release --example bench_upstream -- 127.0.0.1:9100
//!     curl http://127.0.0.1:9100/__count

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

static SERVED: AtomicU64 = AtomicU64::new(0);

fn main() {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9100".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&address).await.expect("bind");
        let service = tower::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
            if req.method() == http::Method::GET && req.uri().path() == "/__count" {
                let count = SERVED.load(Ordering::SeqCst).to_string();
                return Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(count))));
            }
            let _ = req.into_body().collect().await;
            SERVED.fetch_add(1, Ordering::SeqCst);
            Ok(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
        });
        hookgate::server::run(listener, service, std::future::pending())
            .await
            .expect("serve");
    });
}
