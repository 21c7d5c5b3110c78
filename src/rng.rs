//! The draw's random generator. Default: rand's StdRng (ChaCha12, a CSPRNG) seeded from the
//! OS, so no client can predict the next draw from outcomes it has seen. `rng xoshiro` (load
//! option) selects xoshiro256++: faster, not cryptographically secure. Only the master draws.

use crate::engine::alias::Uniform;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::cell::RefCell;
use std::sync::Mutex;

redis_module::enum_configuration! {
    /// Variant names are the option values (`rng chacha|xoshiro`).
    #[allow(non_camel_case_types)]
    pub enum RngKind {
        chacha = 0,
        xoshiro = 1,
    }
}

/// The `rng` load option (module config `lottery.rng`, immutable).
pub static RNG_KIND: Mutex<RngKind> = Mutex::new(RngKind::chacha);

pub enum Generator {
    Chacha(Box<StdRng>),
    Xoshiro(Box<Xoshiro256PlusPlus>),
}

impl Uniform for Generator {
    #[inline]
    fn below(&mut self, n: u64) -> u64 {
        match self {
            Generator::Chacha(r) => r.below(n),
            Generator::Xoshiro(r) => r.below(n),
        }
    }
}

impl Generator {
    fn new(kind: &RngKind) -> Option<Generator> {
        Some(match kind {
            RngKind::xoshiro => {
                Generator::Xoshiro(Box::new(Xoshiro256PlusPlus::try_from_os_rng().ok()?))
            }
            RngKind::chacha => Generator::Chacha(Box::new(StdRng::try_from_os_rng().ok()?)),
        })
    }
}

pub fn kind_name() -> &'static str {
    match RNG_KIND.lock().map(|k| k.clone()) {
        Ok(RngKind::xoshiro) => "xoshiro256++",
        _ => "chacha12",
    }
}

thread_local! {
    static GEN: RefCell<Option<Generator>> = const { RefCell::new(None) };
}

/// Runs `f` with the thread's generator (created on first use from the configured kind,
/// seeded from the OS). None only if the OS has no randomness to give.
pub fn with<T>(f: impl FnOnce(&mut Generator) -> T) -> Option<T> {
    GEN.with(|g| {
        let mut g = g.try_borrow_mut().ok()?;
        if g.is_none() {
            let kind = RNG_KIND
                .lock()
                .map(|k| k.clone())
                .unwrap_or(RngKind::chacha);
            *g = Generator::new(&kind);
        }
        g.as_mut().map(f)
    })
}

/// 128 random bits from the OS for a new campaign's hash keys.
pub fn seed() -> Option<(u64, u64)> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).ok()?;
    let (a, c) = b.split_at(8);
    Some((
        u64::from_le_bytes(a.try_into().ok()?),
        u64::from_le_bytes(c.try_into().ok()?),
    ))
}

/// A VERIFIABLE campaign's seed: 32 bytes from the OS's CSPRNG (only the master draws one;
/// replicas and the AOF get it in the epoch's effect).
pub fn seed32() -> Option<[u8; 32]> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).ok()?;
    Some(b)
}
