//! Fuzz target: see `hookgate::fuzzing::timestamp` for the input framing and the checked properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hookgate::fuzzing::timestamp(data));
