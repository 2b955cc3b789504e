//! Micro-benchmarks of verification: each scheme's `verify` against a bare HMAC-SHA256 of the
//! same bytes (key schedule prepared once, as hookgate does), and the gateway's whole
//! decision (verify, freshness, dedup keys). Reports ns per operation and the overhead beyond
//! the HMAC itself. Then the bare HMAC-SHA256 of 1 KiB and 64 KiB in the two implementations
//! in the tree (RustCrypto `hmac`/`sha2`, which hookgate uses, and `ring`): the floor any
//! verifier pays per byte on this CPU.
//!
//!     cargo run --release --example micro

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use hookgate::gateway::{decide, PeerAddr};
use hookgate::sender::{now_secs, sample, Signer};

fn time_it(mut f: impl FnMut()) -> f64 {
    // Calibrate to ~0.5 s, take the best of 5 runs (least disturbed).
    let mut n = 1000u64;
    loop {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        if t.elapsed() > Duration::from_millis(100) {
            break;
        }
        n *= 2;
    }
    let n = n * 5;
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let presets = ["cloudkeep", "vaas", "standard-webhooks", "stripe"];
    let secret = |p: &str| {
        if p == "standard-webhooks" {
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        } else {
            "micro-secret"
        }
    };
    let mut text = String::new();
    for p in presets {
        text += &format!(
            "[[source]]\nname = \"{p}\"\npath = \"/{p}\"\npreset = \"{p}\"\nupstream = \"http://127.0.0.1:9/\"\nsecrets = [{{ value = \"{}\" }}]\n",
            secret(p)
        );
    }
    let config =
        hookgate::config::parse(&text, Path::new("."), &HashMap::<String, String>::new()).unwrap();
    println!("verification of a 1 KiB delivery (best of 5; ns per operation)");
    println!(
        "{:<20} {:>10} {:>12} {:>12} {:>10}",
        "scheme", "bare HMAC", "verify", "decide", "overhead"
    );
    for source in &config.sources {
        let preset = source.preset.unwrap();
        let now = now_secs();
        let mut event = sample::event(preset, "evt_micro_0001", now, None);
        let mut body = event.body.to_vec();
        // Pad the sample to 1 KiB inside a JSON string.
        let pad = 1024usize.saturating_sub(body.len() + 12);
        body.truncate(body.len() - 1);
        body.extend_from_slice(format!(",\"pad\":\"{}\"}}", "x".repeat(pad)).as_bytes());
        event.body = Bytes::from(body);
        let signer = Signer::for_preset(preset, Some(secret(preset))).unwrap();
        let headers = signer.headers(&event, now, 1);
        let check = source.signature.as_ref().unwrap();
        check
            .scheme
            .verify(&check.keys, &headers, &event.body)
            .expect("valid");

        // The bare HMAC over the same signed bytes, keyed once.
        let signed: Vec<u8> = match preset {
            "standard-webhooks" => {
                [format!("evt_micro_0001.{now}.").as_bytes(), &event.body].concat()
            }
            "stripe" => [format!("{now}.").as_bytes(), &event.body[..]].concat(),
            _ => event.body.to_vec(),
        };
        let keyed = Hmac::<sha2::Sha256>::new_from_slice(b"micro-secret").unwrap();
        let bare = time_it(|| {
            let mut mac = keyed.clone();
            mac.update(black_box(&signed));
            black_box(mac.finalize().into_bytes());
        });
        let verify = time_it(|| {
            black_box(check.scheme.verify(
                &check.keys,
                black_box(&headers),
                black_box(&event.body),
            ))
            .unwrap();
        });
        let mut req = http::Request::new(event.body.clone());
        *req.headers_mut() = headers.clone();
        req.extensions_mut().insert(Arc::clone(source));
        req.extensions_mut()
            .insert(PeerAddr("127.0.0.1:1".parse().unwrap()));
        let now_ms = now * 1000;
        let decide_ns = time_it(|| {
            black_box(decide(source, black_box(&req), now_ms)).unwrap();
        });
        println!(
            "{:<20} {:>10.0} {:>12.0} {:>12.0} {:>9.0}%",
            preset,
            bare,
            verify,
            decide_ns,
            (verify / bare - 1.0) * 100.0
        );
    }
    hmac_floor();
}

/// Bare HMAC-SHA256 per body size, RustCrypto against ring.
fn hmac_floor() {
    println!("\nbare HMAC-SHA256 (best of 5; ns per operation, GB/s)");
    println!("{:<10} {:>16} {:>16}", "body", "hmac + sha2", "ring");
    let keyed = Hmac::<sha2::Sha256>::new_from_slice(b"micro-secret").unwrap();
    let ring_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"micro-secret");
    for size in [1024usize, 65536] {
        let body = vec![b'x'; size];
        let rust_crypto = time_it(|| {
            let mut mac = keyed.clone();
            mac.update(black_box(&body));
            black_box(mac.finalize().into_bytes());
        });
        let ring = time_it(|| {
            black_box(ring::hmac::sign(&ring_key, black_box(&body)));
        });
        let rate = |ns: f64| size as f64 / ns;
        println!(
            "{:<10} {:>8.0} ({:.2}) {:>8.0} ({:.2})",
            format!("{} KiB", size / 1024),
            rust_crypto,
            rate(rust_crypto),
            ring,
            rate(ring)
        );
    }
}
