//! Fuzzes the decoders a hostile RDB, RESTORE payload or replication stream reaches: the meta
//! record, per-user chunks and effects (`lottery_engine::fuzz_checks`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lottery_engine::fuzz_checks::decode_payload(data));
