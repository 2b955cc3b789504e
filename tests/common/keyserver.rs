//! A provider's key server for the key-fetching tests: HTTPS on 127.0.0.1:0 with a
//! certificate for `localhost` from a test CA, answering each path from a table the test
//! sets (status, body, headers) and recording every path it is asked for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use super::{temp_dir, TestPki};

/// One answer of the key server.
#[derive(Clone)]
pub(crate) struct Route {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) headers: Vec<(&'static str, String)>,
}

impl Route {
    pub(crate) fn ok(body: &str, max_age: u64) -> Self {
        Route {
            status: 200,
            body: body.as_bytes().to_vec(),
            headers: vec![("cache-control", format!("public, max-age={max_age}"))],
        }
    }
}

/// An HTTPS server on 127.0.0.1:0 with a certificate for `localhost` from a test CA; records
/// every path it is asked for.
pub(crate) struct KeyServer {
    pub(crate) addr: SocketAddr,
    pub(crate) ca: PathBuf,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    pub(crate) seen: Arc<Mutex<Vec<String>>>,
}

impl KeyServer {
    pub(crate) async fn start(name: &str) -> KeyServer {
        let dir = temp_dir(name);
        let pki = TestPki::create(&dir);
        let acceptor = hookgate::tls::TlsReloader::new(&hookgate::tls::TlsFiles {
            cert: pki.cert.clone(),
            key: pki.key.clone(),
        })
        .unwrap()
        .acceptor()
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, s) = (routes.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, r, s) = (acceptor.clone(), r.clone(), s.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |req: Request<Incoming>| {
                        let path = req.uri().path().to_string();
                        s.lock().unwrap().push(path.clone());
                        let route = r.lock().unwrap().get(&path).cloned();
                        async move {
                            let route = route.unwrap_or(Route {
                                status: 404,
                                body: b"not found".to_vec(),
                                headers: Vec::new(),
                            });
                            let mut response = Response::builder().status(route.status);
                            for (k, v) in &route.headers {
                                response = response.header(*k, v.as_str());
                            }
                            Ok::<_, std::convert::Infallible>(
                                response.body(Full::new(Bytes::from(route.body))).unwrap(),
                            )
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        KeyServer {
            addr,
            ca: pki.ca,
            routes,
            seen,
        }
    }

    pub(crate) fn route(&self, path: &str, route: Route) {
        self.routes.lock().unwrap().insert(path.to_string(), route);
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    pub(crate) fn pattern(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    pub(crate) fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}
