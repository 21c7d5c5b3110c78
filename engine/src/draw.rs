//! The draw: `plan_draw` decides (checks in order, then the pick on the alias table) without
//! changing anything observable; `commit_draw` applies a passed plan and `count` a refused or
//! replayed one, each returning the effect to replicate.
//!
//! Time (`now`, Unix ms) and randomness (`Uniform`) come in as arguments, so every rule is
//! unit-tested, and so a replica applies a draw's effect without reading a clock or drawing.
//! A VERIFIABLE campaign picks in `draw_verified`.

use super::alias::{AliasTable, Uniform};
use super::campaign::{
    Campaign, Counters, DrawReply, Outcome, Plan, SoldOut, StreamId, REJECTION_COUNT,
};
use super::draw_verified::table_fingerprint;
pub use super::draw_verified::{DrawKey, PickRule, VerifiedPick};
use super::effect::{DrawEffect, Effect, PrizeDelta, COUNT_REPLAYS};
use super::flow::{self, Gate, Swept, PPM};
use super::reqcache::Remembered;
use super::users::{UserDay, UserLife, UserWins};
use super::verify;

/// One exact pick among `items` with their weights (0: never): a uniform number below the
/// weights' sum, then the item whose run holds it. None when the weights come to 0. O(items).
fn weighted_pick<U: Uniform + ?Sized>(
    items: impl Iterator<Item = usize> + Clone,
    weight: impl Fn(usize) -> u64,
    rng: &mut U,
) -> Option<usize> {
    let total: u64 = items.clone().map(&weight).sum();
    if total == 0 {
        return None;
    }
    let mut x = rng.below(total);
    for i in items {
        let w = weight(i);
        if x < w {
            return Some(i);
        }
        x -= w;
    }
    None
}

/// The user's state a draw's checks read.
struct UserNow {
    day: UserDay,
    life: UserLife,
    /// The period `now` falls in.
    period: i64,
}

/// Picks of a locked prize drawn again under SOLDOUT REDRAW before one exact pick among the
/// winnable entries.
const REDRAW_TRIES: u32 = 16;

impl Campaign {
    /// Builds the alias table if the prizes changed. Under SOLDOUT REDRAW, prizes that cannot
    /// be won (sold out, or paced and ahead of their pace at `now`) get weight 0, so a draw
    /// picks among the others with exactly their relative odds.
    pub(crate) fn ensure_table(&mut self, now: i64) {
        let redraw = self.rules.soldout == SoldOut::Redraw;
        if redraw && !self.ids.paced.is_empty() {
            let w = self.rules.window;
            let prizes = &self.prizes;
            let avail = self
                .ids
                .paced
                .iter()
                .map(|&i| prizes[i as usize].available(w, now));
            if !avail.eq(self.table_paced.iter().copied()) {
                self.table_dirty = true;
            }
        }
        if !self.table_dirty {
            return;
        }
        let window = self.rules.window;
        let mut w: Vec<u32> = self
            .prizes
            .iter()
            .map(|p| {
                if redraw && !p.available(window, now) {
                    0
                } else {
                    p.weight
                }
            })
            .collect();
        w.push(self.rules.nothing);
        self.table = AliasTable::new(&w);
        if self.verify.is_some() {
            self.table_verify = (verify::prefix_sums(&w), table_fingerprint(&self.prizes, &w));
        } else {
            self.table_verify = (Vec::new(), 0);
        }
        self.table_weights = w;
        self.tier_tables.clear();
        self.tier_tables.resize(self.rules.tiers.len(), None);
        self.tier_verify.clear();
        let prizes = &self.prizes;
        self.table_paced = self
            .ids
            .paced
            .iter()
            .map(|&i| prizes[i as usize].available(window, now))
            .collect();
        self.table_dirty = false;
    }

    /// The period number of `ms` (what DAILY counts: a day, a week or a month).
    #[inline]
    pub(crate) fn period_of(&self, ms: i64) -> i64 {
        self.rules.period.index(ms, self.rules.dayoffset_min)
    }

    /// Chances left: the period's free chances plus bonus, capped by what TOTAL leaves;
    /// -1 when both are unlimited.
    #[inline]
    pub(crate) fn chances_left(&self, day: &UserDay, life: &UserLife, period: i64) -> i64 {
        let daily = self.rules.daily.map(|d| {
            let used = if day.last_draw_ms != 0 && self.period_of(day.last_draw_ms) == period {
                day.draws_today
            } else {
                0
            };
            i64::from(d.saturating_sub(used)) + i64::from(day.bonus)
        });
        let total = self
            .rules
            .total
            .map(|t| i64::from(t.saturating_sub(life.draws)));
        match (daily, total) {
            (None, None) => -1,
            (Some(a), None) | (None, Some(a)) => a,
            (Some(a), Some(b)) => a.min(b),
        }
    }

    /// The user's day state as of `now` (draws_today reset in a new period), wins record and
    /// lifetime counts, with one lookup.
    pub(crate) fn user_state(&self, key: u128, now: i64) -> (UserDay, UserWins, UserLife) {
        let (d, w, l) = self.users.get_all(key);
        (
            self.day_as_of(d.unwrap_or_default(), now),
            w.unwrap_or_default(),
            l,
        )
    }

    /// A day state as of `now` (draws_today reset in a new period).
    fn day_as_of(&self, mut d: UserDay, now: i64) -> UserDay {
        if d.last_draw_ms != 0 && self.period_of(d.last_draw_ms) != self.period_of(now) {
            d.draws_today = 0;
        }
        d
    }

    fn reject(&self, outcome: Outcome, user: &UserNow, wait_ms: i64, gate: Gate) -> Plan {
        Plan::Reject(
            DrawReply {
                outcome,
                prize: 0,
                win_id: None,
                chances_left: self.chances_left(&user.day, &user.life, user.period),
                wait_ms,
            },
            gate,
        )
    }
    /// Decides a draw without changing anything observable (`plan_draw_from` without CLIENT).
    pub fn plan_draw<U: Uniform + ?Sized>(
        &mut self,
        user: u128,
        request: Option<u128>,
        now: i64,
        rng: &mut U,
    ) -> Plan {
        self.plan_draw_from(user, request, None, now, rng)
    }

    /// `plan_draw_from` on a tier's table (index in `rules().tiers`; None: the base table).
    /// An index past the tiers draws from the base table (the command layer looks names up).
    pub fn plan_draw_tier<U: Uniform + ?Sized>(
        &mut self,
        user: u128,
        request: Option<u128>,
        client: Option<u128>,
        tier: Option<usize>,
        now: i64,
        rng: &mut U,
    ) -> Plan {
        self.plan(user, request, client, tier, now, rng, None).0
    }

    /// `plan_draw_tier` of a VERIFIABLE campaign: a draw that passes the checks picks with
    /// the words of its draw number (`verify::Words`, keyed by the epoch's seed and `key`)
    /// instead of `rng`, which only ADMIT's coin still uses. Returns what it picked for the
    /// stream entries (None: the campaign is not verifiable, or the draw did not pass).
    /// A current seed already revealed is not used: the pick then takes `key.fresh_seed`
    /// (`VerifiedPick::new_epoch`), which the caller makes the next epoch's seed. Changes
    /// nothing observable, like every plan. (`plan_draw`, `plan_draw_from` and
    /// `plan_draw_tier` pick with `rng` whatever the campaign.)
    #[allow(clippy::too_many_arguments)]
    pub fn plan_draw_verified<U: Uniform + ?Sized>(
        &mut self,
        user: u128,
        request: Option<u128>,
        client: Option<u128>,
        tier: Option<usize>,
        now: i64,
        rng: &mut U,
        key: DrawKey<'_>,
    ) -> (Plan, Option<VerifiedPick>) {
        self.plan(user, request, client, tier, now, rng, Some(key))
    }

    /// Decides a draw by `user` (from `client`, a client key, if given) without changing
    /// anything observable. Check order: REQID replay, window, pause, client (penalty,
    /// CLIENTLIMIT), ban, MAXWINS, cooldown, TOTAL, the period's chances, ADMIT, RATE; then
    /// the pick (see `pick`).
    pub fn plan_draw_from<U: Uniform + ?Sized>(
        &mut self,
        user: u128,
        request: Option<u128>,
        client: Option<u128>,
        now: i64,
        rng: &mut U,
    ) -> Plan {
        self.plan(user, request, client, None, now, rng, None).0
    }

    #[allow(clippy::too_many_arguments)]
    fn plan<U: Uniform + ?Sized>(
        &mut self,
        user: u128,
        request: Option<u128>,
        client: Option<u128>,
        tier: Option<usize>,
        now: i64,
        rng: &mut U,
        key: Option<DrawKey<'_>>,
    ) -> (Plan, Option<VerifiedPick>) {
        let mut picked = None;
        let plan = self.plan_checks(user, request, client, tier, now, rng, key, &mut picked);
        (plan, picked)
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn plan_checks<U: Uniform + ?Sized>(
        &mut self,
        user: u128,
        request: Option<u128>,
        client: Option<u128>,
        tier: Option<usize>,
        now: i64,
        rng: &mut U,
        key: Option<DrawKey<'_>>,
        picked: &mut Option<VerifiedPick>,
    ) -> Plan {
        if let Some(rk) = request {
            if let Some(r) = self.reqs.get(rk, now, self.rules.idempotency_ms) {
                return Plan::Replay(DrawReply {
                    outcome: if r.outcome == 0 {
                        Outcome::Win
                    } else {
                        Outcome::Lose
                    },
                    prize: r.prize,
                    win_id: (r.outcome == 0).then_some(StreamId {
                        ms: r.win_ms,
                        seq: r.win_seq,
                    }),
                    chances_left: r.chances_left,
                    wait_ms: r.wait_ms,
                });
            }
        }
        let (day, wins, life) = self.user_state(user, now);
        let u = UserNow {
            day,
            life,
            period: self.period_of(now),
        };
        let mut gate = Gate {
            user,
            ..Gate::default()
        };
        if let Some((start, end)) = self.rules.window {
            if now < start {
                let wait = start.saturating_sub(now);
                return self.reject(Outcome::NotStarted, &u, wait, gate);
            }
            if now >= end {
                return self.reject(Outcome::Ended, &u, 0, gate);
            }
        }
        if self.paused {
            return self.reject(Outcome::Paused, &u, 0, gate);
        }
        if let Some(ck) = client {
            let old = self.clients.get(ck).unwrap_or_default();
            let (st, refused) =
                flow::client_check(old, self.rules.client_limit, self.rules.penalty_ms, now);
            if st != old {
                gate.client = Some((ck, st));
            }
            if let Some(wait) = refused {
                let until = st.banned_until;
                if until > now && old.banned_until <= now {
                    // Just put in the penalty box: the user too.
                    if self.bans.get(user).is_none_or(|b| b < until) {
                        gate.user_ban = Some(until);
                    }
                }
                return self.reject(Outcome::Limited, &u, wait, gate);
            }
        }
        if let Some(until) = self.bans.get(user) {
            if until > now {
                let wait = until.saturating_sub(now);
                return self.reject(Outcome::Banned, &u, wait, gate);
            }
        }
        if let Some(max) = self.rules.maxwins {
            if wins.wins >= max {
                return self.reject(Outcome::AlreadyWon, &u, 0, gate);
            }
        }
        if day.last_draw_ms != 0 && self.rules.cooldown_ms > 0 {
            let cd = i64::try_from(self.rules.cooldown_ms).unwrap_or(i64::MAX);
            let ready = day.last_draw_ms.saturating_add(cd);
            if now < ready {
                let wait = ready.saturating_sub(now);
                return self.reject(Outcome::Cooldown, &u, wait, gate);
            }
        }
        if let Some(t) = self.rules.total {
            if life.draws >= t {
                return self.reject(Outcome::QuotaTotal, &u, -1, gate);
            }
        }
        if let Some(d) = self.rules.daily {
            if day.draws_today >= d && day.bonus == 0 {
                let wait = if d == 0 {
                    -1
                } else {
                    self.rules.period.ms_to_next(now, self.rules.dayoffset_min)
                };
                return self.reject(Outcome::Quota, &u, wait, gate);
            }
        }
        if let Some((p1, p2)) = self.rules.admit {
            let was_waiting = self.admit_waiting(user, now);
            let p = if was_waiting { p2 } else { p1 };
            if p < PPM && rng.below(u64::from(PPM)) >= u64::from(p) {
                if !was_waiting {
                    gate.waiting = Some(true);
                }
                return self.reject(Outcome::Retry, &u, 0, gate);
            }
            if was_waiting {
                gate.waiting = Some(false);
            }
        } else if !self.waiting.is_empty() && self.waiting.get(user).is_some() {
            gate.waiting = Some(false);
        }
        if let Some(rate) = self.rules.rate {
            match rate.admit(self.tat_ns, now) {
                Ok(tat) => gate.tat_ns = Some(tat),
                Err(wait) => {
                    // Admitted by ADMIT but over the rate: still waiting, as it was.
                    if gate.waiting == Some(false) {
                        gate.waiting = None;
                    }
                    return self.reject(Outcome::Busy, &u, wait, gate);
                }
            }
        }
        let seq = self.counters.draws.saturating_add(1);
        let prize = match key {
            Some(k) if self.verify.is_some() => {
                let (prize, p) = self.pick_verified(tier, &life, now, k, seq);
                *picked = Some(p);
                prize
            }
            _ => self.pick(tier, &life, now, rng),
        };
        Plan::Pass {
            prize,
            seq,
            day,
            life,
            gate,
        }
    }

    /// The pick of a draw that passed the checks: a guaranteed pick if the user's draws in
    /// a row without a win reached GUARANTEE, else one pick on the table in force (the
    /// tier's or the base), then `resolve` for a prize that cannot be won now. None: a loss.
    #[inline]
    fn pick<U: Uniform + ?Sized>(
        &mut self,
        tier: Option<usize>,
        life: &UserLife,
        now: i64,
        rng: &mut U,
    ) -> Option<usize> {
        self.ensure_table(now);
        let tier = tier.filter(|&t| t < self.rules.tiers.len());
        if let Some(t) = tier {
            self.ensure_tier(t, now);
        }
        // The user's draw number in the campaign, this draw included.
        let nth = life.draws.saturating_add(1);
        if let Some(g) = &self.rules.guarantee {
            if life.since_win.saturating_add(1) >= g.n {
                if let Some(i) = self.guaranteed_pick(tier, nth, now, rng) {
                    return Some(i);
                }
            }
        }
        let entry = self.table_in_force(tier).0.pick(rng)?;
        self.resolve(entry as usize, tier, nth, now, rng, false)
    }

    /// The exact integer mass of each entry (the prizes in table order, then NOTHING) of the
    /// table a draw at `now` uses: the tier's (index in `rules().tiers`) or, with None or an
    /// index past the tiers, the base table; built first if needed, as a draw would. Entry
    /// `i` is drawn with probability `mass[i] / sum(mass)` (see `AliasTable::mass`). Reads
    /// nothing observable and changes nothing but the cached tables; for tests and
    /// diagnostics.
    pub fn table_mass(&mut self, tier: Option<usize>, now: i64) -> Vec<u128> {
        self.ensure_table(now);
        let tier = tier.filter(|&t| t < self.rules.tiers.len());
        if let Some(t) = tier {
            self.ensure_tier(t, now);
        }
        self.table_in_force(tier).0.mass()
    }

    /// Builds a tier's table if it is not built (`ensure_table` first, at the same `now`).
    pub(crate) fn ensure_tier(&mut self, t: usize, now: i64) {
        if self.tier_tables.get(t).is_some_and(Option::is_some)
            && (self.verify.is_none() || self.tier_verify.get(t).is_some_and(Option::is_some))
        {
            return;
        }
        let Some(tier) = self.rules.tiers.get(t) else {
            return;
        };
        let mut w: Vec<u32> = self.prizes.iter().map(|p| p.weight).collect();
        for (id, v) in &tier.weights {
            if let Some(i) = self.prize_index(id) {
                w[i] = *v;
            }
        }
        w.push(tier.nothing.unwrap_or(self.rules.nothing));
        // Under REDRAW, prizes that cannot be won have weight 0, as in the base table.
        if self.rules.soldout == SoldOut::Redraw {
            let window = self.rules.window;
            for (x, p) in w.iter_mut().zip(&self.prizes) {
                if !p.available(window, now) {
                    *x = 0;
                }
            }
        }
        if self.tier_tables.len() < self.rules.tiers.len() {
            self.tier_tables.resize(self.rules.tiers.len(), None);
        }
        if self.verify.is_some() {
            if self.tier_verify.len() < self.rules.tiers.len() {
                self.tier_verify.resize(self.rules.tiers.len(), None);
            }
            if let Some(slot) = self.tier_verify.get_mut(t) {
                *slot = Some((verify::prefix_sums(&w), table_fingerprint(&self.prizes, &w)));
            }
        }
        if let Some(slot) = self.tier_tables.get_mut(t) {
            *slot = Some((AliasTable::new(&w), w));
        }
    }

    /// The table in force and its weights (prizes then NOTHING; 0 for a prize REDRAW took
    /// out): the tier's when it is built, else the base table.
    #[inline]
    pub(crate) fn table_in_force(&self, tier: Option<usize>) -> (&AliasTable, &[u32]) {
        match tier.and_then(|t| self.tier_tables.get(t)?.as_ref()) {
            Some((t, w)) => (t, w),
            None => (&self.table, &self.table_weights),
        }
    }

    /// Whether prize `i` can be won on the user's `nth` draw at `now`: in stock, not ahead of
    /// its pace, unlocked.
    #[inline]
    pub(crate) fn winnable(&self, i: usize, nth: u32, now: i64) -> bool {
        self.prizes
            .get(i)
            .is_some_and(|p| p.available(self.rules.window, now) && nth >= p.after)
    }

    /// A guaranteed draw's prize: one of the GUARANTEE prizes (every prize if none are
    /// listed) that is winnable and weighs something in the table in force, chosen with
    /// those weights. None when no prize qualifies (the draw is then an ordinary one).
    pub(crate) fn guaranteed_pick<U: Uniform + ?Sized>(
        &self,
        tier: Option<usize>,
        nth: u32,
        now: i64,
        rng: &mut U,
    ) -> Option<usize> {
        let g = self.rules.guarantee.as_ref()?;
        let weights = self.table_in_force(tier).1;
        let listed: Vec<usize> = if g.prizes.is_empty() {
            (0..self.prizes.len()).collect()
        } else {
            g.prizes
                .iter()
                .filter_map(|id| self.prize_index(id))
                .collect()
        };
        let weight = |i: usize| {
            if self.winnable(i, nth, now) {
                u64::from(weights.get(i).copied().unwrap_or(0))
            } else {
                0
            }
        };
        weighted_pick(listed.iter().copied(), weight, rng)
    }

    /// The prize a table entry gives (None: a loss). A prize that cannot be won now (sold
    /// out, ahead of its pace, locked by AFTER) follows the sold-out policy: LOSE a loss;
    /// REDRAW a pick among the winnable entries with their relative weights (picks of a
    /// locked prize drawn again, then one exact pick over the winnable ones); FALLBACK the
    /// fallback prize if the user can win it now.
    /// `verified`: REDRAW picks with the table's prefix sums (a verifiable draw).
    pub(crate) fn resolve<U: Uniform + ?Sized>(
        &self,
        entry: usize,
        tier: Option<usize>,
        nth: u32,
        now: i64,
        rng: &mut U,
        verified: bool,
    ) -> Option<usize> {
        let p = self.prizes.get(entry)?; // the last entry (NOTHING) is not a prize
        if self.winnable(entry, nth, now) {
            return Some(entry);
        }
        match self.rules.soldout {
            SoldOut::Lose => None,
            // Sold out or held back (not in the table's odds any more): a loss, as before.
            SoldOut::Redraw if !p.available(self.rules.window, now) => None,
            SoldOut::Redraw => self.redraw(tier, nth, now, rng, verified),
            SoldOut::Fallback => {
                let f = self.rules.fallback.as_deref()?;
                let i = self.prize_index(f)?;
                self.winnable(i, nth, now).then_some(i)
            }
        }
    }

    /// REDRAW after a pick of a locked prize: the same table drawn again while it gives a
    /// locked prize (at most `REDRAW_TRIES` times), then one exact pick among the winnable
    /// entries and NOTHING. Either way the outcome has exactly the distribution of the table
    /// without the locked prizes.
    fn redraw<U: Uniform + ?Sized>(
        &self,
        tier: Option<usize>,
        nth: u32,
        now: i64,
        rng: &mut U,
        verified: bool,
    ) -> Option<usize> {
        let (table, weights) = self.table_in_force(tier);
        let n = self.prizes.len();
        for _ in 0..REDRAW_TRIES {
            let e = if verified {
                verify::table_pick(self.verify_table(tier).0, rng)?
            } else {
                table.pick(rng)? as usize
            };
            if e >= n {
                return None;
            }
            if self.winnable(e, nth, now) {
                return Some(e);
            }
            if !self.prizes[e].available(self.rules.window, now) {
                return None;
            }
        }
        let weight = |i: usize| {
            if i == n || self.winnable(i, nth, now) {
                u64::from(weights.get(i).copied().unwrap_or(0))
            } else {
                0
            }
        };
        weighted_pick(0..=n, weight, rng).filter(|&i| i < n)
    }

    /// Applies a passed draw: consumes a chance, starts the cooldown, sells the prize (if
    /// any), remembers the reply for REQID, evicts expired REQIDs. Returns the reply and the
    /// effect to replicate. `plan` is what `plan_draw` just returned for this user at this
    /// time; a `Replay` or `Reject` plan is only counted (as `count` does).
    pub fn commit_draw(
        &mut self,
        user: u128,
        request: Option<u128>,
        now: i64,
        plan: &Plan,
        win_id: Option<StreamId>,
    ) -> (DrawReply, Effect) {
        let period = self.period_of(now);
        let (prize, mut day, mut life, gate) = match *plan {
            Plan::Pass {
                prize,
                day,
                life,
                gate,
                ..
            } => (prize, day, life, gate),
            Plan::Replay(r) | Plan::Reject(r, _) => return (r, self.count(plan, now)),
        };
        self.apply_gate(&gate, now);
        let free = match self.rules.daily {
            None => true,
            Some(d) => day.draws_today < d,
        };
        if !free {
            day.bonus = day.bonus.saturating_sub(1);
        }
        day.draws_today = day.draws_today.saturating_add(1);
        day.last_draw_ms = now;
        let won = prize.and_then(|i| {
            let p = self.prizes.get_mut(i)?;
            if let Some(s) = p.stock.as_mut() {
                *s = s.checked_sub(1)?;
            }
            p.sold = p.sold.saturating_add(1);
            p.pending = p.pending.saturating_add(1);
            Some((i, p.name, p.stock, p.sold, p.pending, p.codes))
        });
        // A code prize hands out its oldest unused code (its stock counts them).
        let code = match won {
            Some((_, name, _, _, _, true)) => self.codes.pool_mut(name, self.seed).take(),
            _ => None,
        };
        let name = won.map(|(_, name, ..)| name);
        let (wins, life) = if self.users.keeps_lifetime() {
            life.draws = life.draws.saturating_add(1);
            life.since_win = match won {
                Some(_) => 0,
                None => life.since_win.saturating_add(1),
            };
            (
                self.users.commit_draw_life(user, day, name, life),
                Some(life),
            )
        } else {
            (self.users.commit_draw(user, day, name), None)
        };
        self.counters.draws = self.counters.draws.saturating_add(1);

        let mut eff = DrawEffect {
            now,
            user,
            day,
            wins: None,
            prize: None,
            total_draws: self.counters.draws,
            total_wins: 0,
            total_losses: 0,
            request: None,
            gate: gate.without_user(),
            swept: Swept::default(),
            entry: None,
            life,
            code: None,
        };
        let mut reply = DrawReply {
            outcome: Outcome::Lose,
            prize: 0,
            win_id: None,
            chances_left: self.chances_left(&day, &life.unwrap_or_default(), period),
            wait_ms: i64::try_from(self.rules.cooldown_ms).unwrap_or(i64::MAX),
        };
        if let Some((i, name, stock, sold, pending, _)) = won {
            if stock == Some(0) && self.rules.soldout == SoldOut::Redraw {
                self.table_dirty = true;
            }
            self.counters.wins = self.counters.wins.saturating_add(1);
            reply.outcome = Outcome::Win;
            reply.prize = name;
            reply.win_id = win_id;
            eff.wins = wins;
            eff.prize = Some(PrizeDelta {
                index: i as u32,
                stock,
                sold,
                pending,
            });
        } else {
            self.counters.losses = self.counters.losses.saturating_add(1);
        }
        eff.total_wins = self.counters.wins;
        eff.total_losses = self.counters.losses;
        if let Some(rk) = request {
            if self.rules.idempotency_ms > 0 {
                let idem = i64::try_from(self.rules.idempotency_ms).unwrap_or(i64::MAX);
                let rem = Remembered {
                    made_ms: now,
                    expires_ms: now.saturating_add(idem),
                    outcome: if reply.outcome == Outcome::Win { 0 } else { 1 },
                    prize: reply.prize,
                    win_ms: reply.win_id.map_or(0, |w| w.ms),
                    win_seq: reply.win_id.map_or(0, |w| w.seq),
                    chances_left: reply.chances_left,
                    wait_ms: reply.wait_ms,
                };
                self.reqs.insert(rk, rem);
                if let Some(c) = &code {
                    self.reqs.insert_code(rk, c.clone());
                }
                eff.request = Some((rk, rem));
            }
        }
        self.reqs.evict(now, self.rules.idempotency_ms);
        eff.swept = self.sweep(now);
        eff.code = code;
        (reply, Effect::Draw(Box::new(eff)))
    }

    /// Counts a refusal that changes nothing but a statistics counter: a REQID replay, or a
    /// rejection that touched no flow-control state. Unlike `count` it evicts no REQID
    /// memory and sweeps nothing, so the change is the counter alone, which the caller may
    /// send later, with others, as `stats_effect`. Returns false, counting nothing, for any
    /// other plan (the caller then uses `count`).
    pub fn count_statistic(&mut self, plan: &Plan) -> bool {
        let (c, i) = match plan {
            Plan::Replay(_) => (&mut self.counters.replays, REJECTION_COUNT),
            Plan::Reject(r, gate) if gate.is_empty() => match r
                .outcome
                .rejection_index()
                .and_then(|i| Some((self.counters.rejected.get_mut(i)?, i)))
            {
                Some(c) => c,
                None => return false,
            },
            _ => return false,
        };
        *c = c.saturating_add(1);
        if let Some(u) = self.host.unsent.get_mut(i) {
            *u = u.saturating_add(1);
        }
        true
    }

    /// The statistics counters `count_statistic` changes, as one effect of absolute values
    /// (from here on they count as sent).
    pub fn stats_effect(&mut self) -> Effect {
        self.host.unsent = Default::default();
        Effect::Stats {
            replays: self.counters.replays,
            rejected: self.counters.rejected,
        }
    }

    /// Takes back what `count_statistic` counted and was never sent, so the counters are
    /// again what replicas and the AOF hold (for a master demoted before it could send them).
    pub fn forget_unsent_statistics(&mut self) {
        let unsent = std::mem::take(&mut self.host.unsent);
        let counters = self
            .counters
            .rejected
            .iter_mut()
            .chain(std::iter::once(&mut self.counters.replays));
        for (c, u) in counters.zip(unsent) {
            *c = c.saturating_sub(u);
        }
    }

    /// A copy of the campaign as replicas hold it (`sent_counters`), with no notes of the
    /// command layer's.
    pub fn clone_as_sent(&self) -> Campaign {
        let mut n = self.clone();
        n.counters = self.sent_counters();
        n.host = Default::default();
        n.published.clear();
        n
    }

    /// The counters as replicas and the AOF hold them: without what `count_statistic`
    /// counted and was not sent yet. What a save, a DUMP, a COPY and a digest see, so a file
    /// written between a refusal and the batch that sends it never holds a count the
    /// replication stream has not carried at that point.
    pub fn sent_counters(&self) -> Counters {
        let mut c = self.counters;
        let counters = c.rejected.iter_mut().chain(std::iter::once(&mut c.replays));
        for (v, u) in counters.zip(self.host.unsent) {
            *v = v.saturating_sub(u);
        }
        c
    }

    /// Counts a rejection or a replay (both consume nothing else).
    pub fn count(&mut self, plan: &Plan, now: i64) -> Effect {
        let (which, value) = match plan {
            Plan::Replay(_) => {
                self.counters.replays = self.counters.replays.saturating_add(1);
                self.host.unsent[REJECTION_COUNT] = 0;
                (COUNT_REPLAYS, self.counters.replays)
            }
            Plan::Reject(r, gate) => {
                self.apply_gate(gate, now);
                let i = r.outcome.rejection_index();
                if let Some(u) = i.and_then(|i| self.host.unsent.get_mut(i)) {
                    // The effect carries the counter's absolute value.
                    *u = 0;
                }
                let v = match i.and_then(|i| self.counters.rejected.get_mut(i)) {
                    Some(c) => {
                        *c = c.saturating_add(1);
                        *c
                    }
                    None => 0,
                };
                (r.outcome as u8, v)
            }
            // Not a count: callers commit passed draws. Keep the state as it is.
            Plan::Pass { .. } => (COUNT_REPLAYS, self.counters.replays),
        };
        self.reqs.evict(now, self.rules.idempotency_ms);
        let gate = match plan {
            Plan::Reject(_, g) if !g.is_empty() => Some(g.without_user()),
            _ => None,
        };
        Effect::Count {
            now,
            which,
            value,
            gate,
            swept: self.sweep(now),
        }
    }
}
