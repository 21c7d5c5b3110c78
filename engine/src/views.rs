//! Reads: the campaign's state name, LOTTERY.USER's view of a user, the penalty box, and the
//! heap size for MEMORY USAGE.

use super::campaign::{Campaign, IdEntry, Prize, Tier};

impl Campaign {
    pub fn state_name(&self, now: i64) -> &'static str {
        if let Some((start, end)) = self.rules.window {
            if now < start {
                return "not_started";
            }
            if now >= end {
                return "ended";
            }
        }
        if self.paused {
            "paused"
        } else {
            "active"
        }
    }

    /// LOTTERY.USER values: draws_today, chances_left, bonus, wins, last_prize (interned),
    /// last_draw_ms, cooldown_left_ms, banned_until_ms.
    pub fn user_view(&self, user: u128, now: i64) -> UserView {
        let (day, w, life) = self.user_state(user, now);
        let cooldown_left = if day.last_draw_ms != 0 {
            let cd = i64::try_from(self.rules.cooldown_ms).unwrap_or(i64::MAX);
            day.last_draw_ms
                .saturating_add(cd)
                .saturating_sub(now)
                .max(0)
        } else {
            0
        };
        let banned_until = self.bans.get(user).filter(|&u| u > now).unwrap_or(0);
        UserView {
            draws_today: day.draws_today,
            chances_left: self.chances_left(&day, &life, self.period_of(now)),
            bonus: day.bonus,
            wins: w.wins,
            last_prize: w.last_prize,
            last_draw_ms: day.last_draw_ms,
            cooldown_left_ms: cooldown_left,
            banned_until_ms: banned_until,
            admit_waiting: self.admit_waiting(user, now),
            draws_total: life.draws,
            draws_since_win: life.since_win,
        }
    }

    /// Heap bytes, for MEMORY USAGE.
    pub fn mem_bytes(&self) -> usize {
        let prizes: usize = self
            .prizes
            .iter()
            .chain(self.retired.iter())
            .map(|p| std::mem::size_of::<Prize>() + p.id.capacity())
            .sum();
        // Each name is held twice: in `names` and as a key of the lookup by id.
        let names: usize = self
            .names
            .iter()
            .map(|n| 2 * (n.capacity() + 24) + std::mem::size_of::<IdEntry>() + 8)
            .sum::<usize>()
            + self.ids.paced.capacity() * 4;
        std::mem::size_of::<Campaign>()
            + prizes
            + names
            + self.users.mem_bytes()
            + self.bans.mem_bytes()
            + self.reqs.mem_bytes()
            + self.table.mem_bytes()
            + self.table_weights.capacity() * 4
            + self
                .tier_tables
                .iter()
                .flatten()
                .map(|(t, w)| t.mem_bytes() + w.capacity() * 4)
                .sum::<usize>()
            + self.table_verify.0.capacity() * 8
            + self
                .tier_verify
                .iter()
                .flatten()
                .map(|(p, _)| p.capacity() * 8)
                .sum::<usize>()
            + self
                .published
                .iter()
                .map(|(n, _)| n.capacity() + 40)
                .sum::<usize>()
            + self.codes.mem_bytes()
            + self.transfers.mem_bytes()
            + self.clients.mem_bytes()
            + self.waiting.mem_bytes()
            + self.rules.stream.capacity()
            + self.rules_mem_bytes()
    }

    /// Heap bytes of the rules' lists: each tier's name and weights, and the GUARANTEE
    /// prizes (a client can put hundreds of MB there with one CONFIGURE).
    fn rules_mem_bytes(&self) -> usize {
        use std::mem::size_of;
        let id = |v: &Vec<u8>| v.capacity();
        let tiers: usize = self
            .rules
            .tiers
            .iter()
            .map(|t| {
                size_of::<Tier>()
                    + t.name.capacity()
                    + t.weights.capacity() * size_of::<(Vec<u8>, u32)>()
                    + t.weights.iter().map(|(i, _)| id(i)).sum::<usize>()
            })
            .sum();
        let guarantee = self.rules.guarantee.as_ref().map_or(0, |g| {
            g.prizes.capacity() * size_of::<Vec<u8>>() + g.prizes.iter().map(id).sum::<usize>()
        });
        tiers + guarantee
    }

    /// Clients in the penalty box at `now`.
    pub fn penalized_clients(&self, now: i64) -> usize {
        self.clients
            .iter()
            .filter(|(_, s)| {
                let until = s.banned_until;
                until > now
            })
            .count()
    }

    /// A client's penalty end (Unix ms) if it is in the penalty box at `now`, else 0.
    pub fn client_banned_until(&self, client: u128, now: i64) -> i64 {
        self.clients
            .get(client)
            .map(|s| s.banned_until)
            .filter(|&u| u > now)
            .unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserView {
    pub draws_today: u32,
    pub chances_left: i64,
    pub bonus: u32,
    pub wins: u32,
    pub last_prize: u32,
    pub last_draw_ms: i64,
    pub cooldown_left_ms: i64,
    pub banned_until_ms: i64,
    /// Turned away by ADMIT, waiting for the next try (which passes with p2).
    pub admit_waiting: bool,
    /// Lifetime counts (0 unless the campaign keeps them).
    pub draws_total: u32,
    pub draws_since_win: u32,
}
