//! Replays the checked-in fuzz seed corpus (`fuzz/corpus/<target>/seed-*`) and any saved crash
//! reproducers (`fuzz/regressions/<target>/`) through the same entry points the cargo-fuzz
//! targets call, on stable Rust as an ordinary test: a fixed crash stays fixed, and the seeds
//! keep matching the input framing. Fuzzing itself is `scripts/fuzz.sh`.

use std::fs;
use std::path::{Path, PathBuf};

/// Seeds each target's corpus must have at least.
const MIN_SEEDS: usize = 8;

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = files(&root.join("corpus").join(target));
    assert!(
        seeds.len() >= MIN_SEEDS,
        "fuzz/corpus/{target} has {} files, expected at least {MIN_SEEDS}",
        seeds.len()
    );
    let regressions = files(&root.join("regressions").join(target));
    for file in seeds.iter().chain(&regressions) {
        let bytes = fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let outcome = std::panic::catch_unwind(|| run(&bytes));
        assert!(outcome.is_ok(), "{target} panicked on {}", file.display());
    }
}

#[test]
fn signature_header_corpus() {
    replay("signature_header", super::signature_header);
}

#[test]
fn timestamp_corpus() {
    replay("timestamp", super::timestamp);
}

#[test]
fn json_fields_corpus() {
    replay("json_fields", super::json_fields);
}

#[test]
fn config_corpus() {
    replay("config", super::config);
}

#[test]
fn decision_corpus() {
    replay("decision", super::decision);
}
