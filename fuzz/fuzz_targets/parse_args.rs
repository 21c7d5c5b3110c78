//! Fuzzes the argument parsers and the configuration rules (`lottery_engine::fuzz_checks`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lottery_engine::fuzz_checks::parse_args(data));
