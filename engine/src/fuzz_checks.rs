//! What the fuzz targets check, as plain functions, so the fuzzers (`fuzz/`) and the replay
//! of their seeds and regressions (`engine/tests/engine.rs`) run the very same code. Each
//! panics only where an invariant is broken.

use crate::alias::Uniform;
use crate::apply::created_campaign;
use crate::campaign::{Campaign, ConfigChange, Plan, PrizeSpec};
use crate::effect::Effect;
use crate::{parse, persist};

/// A small campaign that chunks and effects are applied to.
fn sample() -> Campaign {
    let ch = ConfigChange {
        prizes: Some(vec![
            PrizeSpec {
                id: b"a".to_vec(),
                weight: 1,
                stock: Some(5),
                after: 0,
                codes: false,
            },
            PrizeSpec {
                id: b"b".to_vec(),
                weight: 2,
                stock: None,
                after: 0,
                codes: false,
            },
        ]),
        ..Default::default()
    };
    Campaign::create(&ch, (3, 4), b"{k}:wins".to_vec()).expect("valid sample")
}

/// The decoders a hostile RDB, RESTORE payload or replication stream reaches. The first byte
/// selects the meta record, a per-user chunk or an effect. Nothing may panic; whatever
/// decodes must re-encode to something that decodes to the same state.
pub fn decode_payload(data: &[u8]) {
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
                if let Some(Ok(made)) = created_campaign(&e) {
                    let _ = persist::encode_meta(&made);
                }
            }
        }
    }
}

/// Random numbers from the input bytes, for draws on a fuzzed campaign.
struct Bytes<'a>(&'a [u8], usize);

impl Uniform for Bytes<'_> {
    fn below(&mut self, n: u64) -> u64 {
        let b = self
            .0
            .get(self.1 % self.0.len().max(1))
            .copied()
            .unwrap_or(0);
        self.1 += 1;
        u64::from(b) % n.max(1)
    }
}

/// The argument parsers and the configuration rules; arguments are `data` split on NUL
/// bytes. Every command's parser gets them (none may panic); whatever CONFIGURE parses must
/// create or change a campaign without panicking, and a few draws on it must keep stock and
/// counters consistent.
pub fn parse_args(data: &[u8]) {
    let args: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    for a in &args {
        let _ = parse::u32_or_inf(a, "x");
        let _ = parse::stock_arg(a);
        let _ = parse::i64_arg(a, "x", i64::MIN + 1, i64::MAX);
    }
    // Every command's parser, on the arguments as given and without the first one (so a
    // seed may start with a key or a subcommand).
    for a in [&args[..], args.get(1..).unwrap_or(&[])] {
        let _ = parse::draw_options(a);
        let _ = parse::ban_args(a);
        let _ = parse::unban_args(a);
        let _ = parse::grant_args(a);
        let _ = parse::restock_args(a);
        let _ = parse::drain_args(a);
        let _ = parse::transfer_args(b"k", a);
        let _ = parse::debug_args(a);
    }
    let Ok(change) = parse::configure_args(&args) else {
        return;
    };
    let Ok(mut c) = Campaign::create(&change, (1, 2), b"{k}:wins".to_vec()) else {
        return;
    };
    let _ = c.configure(&change);
    // VERIFIABLE: an epoch with a seed from the input; draws then pick from its words (on
    // the tiers too), and half of them find the seed revealed.
    if c.starts_verifiable(&change) {
        let mut seed = [0u8; 32];
        for (s, b) in seed.iter_mut().zip(data.iter().rev()) {
            *s = *b;
        }
        c.start_epoch(seed, change.verifiable.flatten());
    }
    let mut g = Bytes(data, 0);
    let fresh = [7u8; 32];
    for i in 0..16i64 {
        let now = 1_700_000_000_000 + i;
        let u = c.user_key(&i.to_le_bytes());
        let plan = if c.verifiable().is_some() {
            if i == 8 {
                let _ = c.reveal_seed();
            }
            let tier = (i % 3 == 1).then_some(i as usize % 5);
            let key = crate::draw::DrawKey {
                key: data,
                fresh_seed: Some(&fresh),
            };
            let (plan, picked) = c.plan_draw_verified(u, None, None, tier, now, &mut g, key);
            if let Some(p) = picked {
                assert!(p.entry <= c.prizes().len());
                assert_eq!(c.table_weights_in_force(p.tier).len(), c.prizes().len() + 1);
                if p.new_epoch {
                    c.start_epoch(fresh, None);
                }
                if p.publish {
                    c.note_published(p.tier);
                }
            }
            plan
        } else {
            c.plan_draw(u, None, now, &mut g)
        };
        match plan {
            Plan::Pass { .. } => {
                c.commit_draw(u, None, now, &plan, None);
            }
            p => {
                c.count(&p, now);
            }
        }
    }
    let sold: u64 = c.prizes().iter().map(|p| p.sold).sum();
    assert!(sold <= c.counters().wins);
    assert_eq!(c.counters().draws, c.counters().wins + c.counters().losses);
}
