//! Fuzzes the argument parsers and the configuration rules: arguments are the input split on
//! NUL bytes. Every command's parser gets them (none may panic); whatever CONFIGURE parses
//! must create or change a campaign without panicking, and a few draws on it must keep stock
//! and counters consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lottery_engine::alias::Uniform;
use lottery_engine::campaign::{Campaign, Plan};
use lottery_engine::parse;

struct Bytes<'a>(&'a [u8], usize);
impl Uniform for Bytes<'_> {
    fn below(&mut self, n: u64) -> u64 {
        let b = self.0.get(self.1 % self.0.len().max(1)).copied().unwrap_or(0);
        self.1 += 1;
        u64::from(b) % n.max(1)
    }
}

fuzz_target!(|data: &[u8]| {
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
    let mut g = Bytes(data, 0);
    for i in 0..16i64 {
        let u = c.user_key(&i.to_le_bytes());
        let plan = c.plan_draw(u, None, 1_700_000_000_000 + i, &mut g);
        match plan {
            Plan::Pass { .. } => {
                c.commit_draw(u, None, 1_700_000_000_000 + i, &plan, None);
            }
            p => {
                c.count(&p, 1_700_000_000_000 + i);
            }
        }
    }
    let sold: u64 = c.prizes().iter().map(|p| p.sold).sum();
    assert!(sold <= c.counters().wins);
    assert_eq!(c.counters().draws, c.counters().wins + c.counters().losses);
});
