//! The upstream client against raw upstreams on 127.0.0.1: connection reuse, upstreams
//! that close (announced or not), large and unread bodies, garbage and unreachable upstreams.

use super::*;
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How a test upstream treats its connections after each answer.
#[derive(Clone, Copy)]
enum Close {
    /// Keep-alive.
    Never,
    /// `Connection: close`, then close.
    Announced,
    /// Keep-alive announced, then closed at once without a word (an upstream's idle
    /// timeout firing while the connection sits in the pool).
    Silently,
}

/// A raw HTTP/1.1 upstream: its URI, the connections it accepted, and a signal for each
/// connection it closed after an answer.
struct TestUpstream {
    uri: String,
    accepted: Arc<AtomicUsize>,
    closed: Arc<tokio::sync::Notify>,
}

/// An upstream answering `200 ok` to each request head; counts connections.
async fn upstream(close: Close) -> (String, Arc<AtomicUsize>) {
    let served = upstream_answering(close, Bytes::from_static(b"ok")).await;
    (served.uri, served.accepted)
}

/// An upstream answering `200` with `body` to each request head.
async fn upstream_answering(close: Close, body: Bytes) -> TestUpstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(tokio::sync::Notify::new());
    let (count, closes) = (accepted.clone(), closed.clone());
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let (body, closes) = (body.clone(), closes.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // Requests here have small bodies that arrive with their heads.
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        continue;
                    }
                    buf.clear();
                    let header = match close {
                        Close::Announced => "Connection: close\r\n",
                        Close::Never | Close::Silently => "",
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\n{header}Content-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if stream.write_all(head.as_bytes()).await.is_err()
                        || stream.write_all(&body).await.is_err()
                    {
                        return;
                    }
                    if !matches!(close, Close::Never) {
                        drop(stream);
                        closes.notify_one();
                        return;
                    }
                }
            });
        }
    });
    TestUpstream {
        uri: format!("http://{addr}/hook"),
        accepted,
        closed,
    }
}

/// Sends `req` to the absolute URI it carries, as the forward does: to that destination's
/// pool, with the request line in origin form.
async fn request_to(
    client: &UpstreamClient,
    mut req: http::Request<Full<Bytes>>,
) -> Result<http::Response<PooledBody>, BoxError> {
    let to = Destination::new(req.uri().clone()).expect("an absolute URI");
    *req.uri_mut() = to.origin.clone();
    client.request(&to, req, Instant::now()).await
}

async fn send(client: &UpstreamClient, uri: &str) -> (u16, Bytes) {
    let mut req = http::Request::new(Full::new(Bytes::from_static(b"{}")));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = uri.parse().unwrap();
    let host = req.uri().authority().unwrap().as_str().to_owned();
    req.headers_mut()
        .insert(http::header::HOST, host.parse().unwrap());
    let response = tokio::time::timeout(Duration::from_secs(5), request_to(client, req))
        .await
        .expect("answered in time")
        .expect("answered");
    let status = response.status().as_u16();
    let body = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
        .await
        .expect("the body read in time")
        .unwrap()
        .to_bytes();
    (status, body)
}

#[tokio::test]
async fn a_keep_alive_upstream_gets_one_connection_for_sequential_requests() {
    let (uri, accepted) = upstream(Close::Never).await;
    let client = UpstreamClient::new(None);
    for _ in 0..5 {
        assert_eq!(send(&client, &uri).await, (200, Bytes::from_static(b"ok")));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn a_per_thread_client_keeps_each_serving_threads_connections_apart() {
    // The upstream on a runtime of its own; two "serving threads" one after the other,
    // each on a current-thread runtime like the per-core listener's.
    let upstream_runtime = tokio::runtime::Runtime::new().unwrap();
    let (uri, accepted) = upstream_runtime.block_on(upstream(Close::Never));
    let client = UpstreamClient::new(None).per_thread();
    let serve_three = |client: UpstreamClient, uri: String| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            for _ in 0..3 {
                assert_eq!(send(&client, &uri).await.0, 200);
            }
        });
        runtime
    };
    let (first_done, first_finished) = std::sync::mpsc::channel();
    let (second_done, second_finished) = std::sync::mpsc::channel::<()>();
    let first = {
        let (client, uri) = (client.clone(), uri.clone());
        std::thread::spawn(move || {
            let _runtime = serve_three(client, uri);
            first_done.send(()).unwrap();
            // Not driving its connection any more: had the second thread been given it,
            // its requests would time out. Wait until that thread has ended either way.
            let _ = second_finished.recv_timeout(Duration::from_secs(60));
        })
    };
    let second = std::thread::spawn(move || {
        first_finished.recv().unwrap();
        let _runtime = serve_three(client, uri);
        drop(second_done);
    });
    let second = second.join();
    first.join().unwrap();
    assert!(second.is_ok(), "the second thread's requests failed");
    // One connection per thread, each reused for its three requests.
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_idle_past_the_pool_timeout_is_not_reused() {
    let (uri, accepted) = upstream(Close::Never).await;
    let client = UpstreamClient::new(None);
    let to = Destination::new(uri.parse().unwrap()).unwrap();
    let at = |now: Instant| {
        let mut req = http::Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = to.origin.clone();
        req.headers_mut()
            .insert(http::header::HOST, "upstream".parse().unwrap());
        let client = client.clone();
        let to = to.clone();
        async move {
            let response = client.request(&to, req, now).await.unwrap();
            response.into_body().collect().await.unwrap();
        }
    };
    let start = Instant::now();
    at(start).await;
    // Within the idle timeout the connection is reused; past it, a new one is opened.
    at(start + POOL_IDLE_TIMEOUT - Duration::from_secs(1)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    at(start + POOL_IDLE_TIMEOUT * 3).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_the_upstream_closes_is_never_reused() {
    let (uri, accepted) = upstream(Close::Announced).await;
    let client = UpstreamClient::new(None);
    for _ in 0..5 {
        assert_eq!(send(&client, &uri).await, (200, Bytes::from_static(b"ok")));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn an_idle_connection_the_upstream_closed_is_set_aside_and_the_request_still_goes() {
    let up = upstream_answering(Close::Silently, Bytes::from_static(b"ok")).await;
    let client = UpstreamClient::new(None);
    assert_eq!(
        send(&client, &up.uri).await,
        (200, Bytes::from_static(b"ok"))
    );
    tokio::time::timeout(Duration::from_secs(5), up.closed.notified())
        .await
        .expect("the upstream closed its connection");
    // Past the runtime's next look at its sockets. Whether the connection's task has seen
    // the close by the time the next request takes it or not, that request goes through: a
    // request the closed connection did not take comes back unsent and goes on a new one.
    tokio::task::yield_now().await;
    assert_eq!(
        send(&client, &up.uri).await,
        (200, Bytes::from_static(b"ok"))
    );
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_large_response_body_is_read_through_and_its_connection_reused() {
    let body = Bytes::from(vec![b'x'; 1 << 20]);
    let up = upstream_answering(Close::Never, body.clone()).await;
    let client = UpstreamClient::new(None);
    for _ in 0..3 {
        assert_eq!(send(&client, &up.uri).await, (200, body.clone()));
    }
    assert_eq!(up.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_response_body_dropped_unread_does_not_return_its_connection() {
    let (uri, accepted) = upstream(Close::Never).await;
    let client = UpstreamClient::new(None);
    let mut req = http::Request::new(Full::new(Bytes::new()));
    *req.uri_mut() = uri.parse().unwrap();
    req.headers_mut()
        .insert(http::header::HOST, "upstream".parse().unwrap());
    let response = request_to(&client, req).await.unwrap();
    // "ok" may already be complete: then the connection was rightly given back.
    let given_back = response.body().back.is_none();
    drop(response);
    assert_eq!(send(&client, &uri).await.0, 200);
    let expected = if given_back { 1 } else { 2 };
    assert_eq!(accepted.load(Ordering::SeqCst), expected);
}

#[tokio::test]
async fn an_upstream_answering_garbage_is_an_error_and_its_connection_is_not_pooled() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut chunk = [0u8; 4096];
            let _ = stream.read(&mut chunk).await;
            let _ = stream.write_all(b"NOT HTTP AT ALL\r\n\r\n").await;
        }
    });
    let client = UpstreamClient::new(None);
    for _ in 0..2 {
        let mut req = http::Request::new(Full::new(Bytes::from_static(b"{}")));
        *req.uri_mut() = format!("http://{addr}/").parse().unwrap();
        req.headers_mut()
            .insert(http::header::HOST, "upstream".parse().unwrap());
        let answer = tokio::time::timeout(Duration::from_secs(5), request_to(&client, req)).await;
        assert!(answer.expect("answered in time").is_err());
    }
    for shard in client.0.idle.iter() {
        assert!(shard.lock().values().all(VecDeque::is_empty));
    }
}

#[tokio::test]
async fn an_unreachable_upstream_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = UpstreamClient::new(None);
    let mut req = http::Request::new(Full::new(Bytes::new()));
    *req.uri_mut() = format!("http://{addr}/").parse().unwrap();
    assert!(request_to(&client, req).await.is_err());
}
