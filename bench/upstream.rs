//! The benchmark's minimal upstream: reads the body and answers `200 ok`, on one thread.
//!
//!     cargo run --release --example bench_upstream -- 127.0.0.1:9100

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

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
            let _ = req.into_body().collect().await;
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
        });
        hookgate::server::run(listener, service, std::future::pending())
            .await
            .expect("serve");
    });
}
