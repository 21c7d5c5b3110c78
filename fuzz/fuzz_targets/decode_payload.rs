//! Fuzzes the decoders a hostile RDB, RESTORE payload or replication stream reaches: the meta
//! record, per-user chunks and effects. Nothing may panic; whatever decodes must re-encode to
//! something that decodes to the same state.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lottery_engine::campaign::{Campaign, ConfigChange, PrizeSpec};
use lottery_engine::effect::Effect;
use lottery_engine::persist;

fn sample() -> Campaign {
    let ch = ConfigChange {
        prizes: Some(vec![
            PrizeSpec { id: b"a".to_vec(), weight: 1, stock: Some(5) },
            PrizeSpec { id: b"b".to_vec(), weight: 2, stock: None },
        ]),
        ..Default::default()
    };
    Campaign::create(&ch, (3, 4), b"{k}:wins".to_vec()).expect("valid sample")
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => {
            if let Ok(c) = persist::decode_meta(rest) {
                let again = persist::encode_meta(&c);
                let d = persist::decode_meta(&again).expect("re-encoded meta decodes");
                assert_eq!(persist::encode_meta(&d), again);
            }
        }
        1 => {
            let mut c = sample();
            if persist::load_chunk(&mut c, rest).is_ok() {
                let mut n = 0;
                persist::for_each_chunk(&c, |_| n += 1);
            }
        }
        _ => {
            if let Ok(e) = Effect::decode(rest) {
                assert_eq!(Effect::decode(&e.encode()).as_ref(), Ok(&e));
                let mut c = sample();
                let _ = c.apply(&e);
                let _ = persist::encode_meta(&c);
                if let Some(Ok(made)) = lottery_engine::apply::created_campaign(&e) {
                    let _ = persist::encode_meta(&made);
                }
            }
        }
    }
});
