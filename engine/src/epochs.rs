//! VERIFIABLE campaigns' epochs: starting one (a new seed, from the next draw on), revealing
//! its seed, changing the log. The seed comes in from the command layer (the OS's CSPRNG on
//! the master); replicas and the AOF get the whole state in `Effect::Seed`, never a seed of
//! their own, so a failover continues the same epoch.

use super::campaign::{Campaign, ConfigChange};
use super::effect::Effect;
use super::verify::{hmac_sha256, SeedLog, Verifiable, DOMAIN, SEED_LEN};

impl Campaign {
    /// The verifiable state (None: not VERIFIABLE).
    pub fn verifiable(&self) -> Option<&Verifiable> {
        self.verify.as_ref()
    }

    /// Whether `change` makes the campaign VERIFIABLE (it is not yet): the command layer
    /// then starts the first epoch with `start_epoch`.
    pub fn starts_verifiable(&self, change: &ConfigChange) -> bool {
        change.verifiable.is_some() && self.verify.is_none()
    }

    /// Starts a new epoch with `seed`: the next epoch number (1 for the first), from the
    /// next draw on, not revealed; `log` (None: the current one, else WINS). The tables'
    /// prefix sums are built by the next draw. Returns the effect to replicate.
    pub fn start_epoch(&mut self, seed: [u8; SEED_LEN], log: Option<SeedLog>) -> Effect {
        let v = Verifiable {
            log: log.or(self.verify.map(|v| v.log)).unwrap_or(SeedLog::Wins),
            epoch: self.verify.map_or(1, |v| v.epoch.saturating_add(1)),
            seed,
            from_draw: self.counters.draws.saturating_add(1),
            revealed: false,
        };
        self.set_verifiable(v);
        Effect::Seed(v)
    }

    /// Whether no further epoch may start (the current one is `MAX_EPOCH`): ROTATE, and a
    /// draw that would replace a revealed seed, are then refused.
    pub fn epochs_exhausted(&self) -> bool {
        self.verify
            .is_some_and(|v| v.epoch >= super::limits::MAX_EPOCH)
    }

    /// The verifiable state of a COPY of this campaign to key `to`: the copy must never draw
    /// with, nor reveal, the original's seed (the original's draws go on with it, and either
    /// campaign revealing it would make the other's draws predictable). Its seed becomes
    /// HMAC-SHA256(seed, "redis-lottery/v1" 0x00 "copy" 0x00 to), which tells nothing of the
    /// original's, marked revealed: the copy's first draw starts a new epoch with a fresh
    /// seed (its `epoch` entry first), and LOTTERY.SEED on the copy shows only the derived
    /// seed. Deterministic, so a replica's and the AOF's COPY give the same state.
    pub fn detach_seed(&mut self, to: &[u8]) {
        if let Some(v) = self.verify.as_mut() {
            let mut msg = Vec::with_capacity(DOMAIN.len() + 6 + to.len());
            msg.extend_from_slice(DOMAIN);
            msg.extend_from_slice(b"\0copy\0");
            msg.extend_from_slice(to);
            v.seed = hmac_sha256(&v.seed, &msg);
            v.revealed = true;
        }
        self.seed_mac = None;
    }

    /// Marks the current seed revealed. None (nothing changed) if it already was, or the
    /// campaign is not VERIFIABLE.
    pub fn reveal_seed(&mut self) -> Option<Effect> {
        let v = self.verify.as_mut().filter(|v| !v.revealed)?;
        v.revealed = true;
        Some(Effect::Seed(*v))
    }

    /// Whether LOTTERY.SEED REVEAL may show the current seed at `now`: the campaign has a
    /// WINDOW and it has ended.
    pub fn may_reveal(&self, now: i64) -> bool {
        self.rules.window.is_some_and(|(_, end)| now >= end)
    }

    /// Sets the whole verifiable state (an applied `Effect::Seed`, a decoded record).
    pub(crate) fn set_verifiable(&mut self, v: Verifiable) {
        let fresh = self.verify.is_none();
        self.verify = Some(v);
        if fresh {
            // The tables get their prefix sums at their next build.
            self.table_dirty = true;
        }
    }
}
