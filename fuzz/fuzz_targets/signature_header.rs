//! Fuzz target: see `hookgate::fuzzing::signature_header` for the input framing and the checked properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hookgate::fuzzing::signature_header(data));
