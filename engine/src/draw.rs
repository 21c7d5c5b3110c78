//! The draw: `plan_draw` decides (checks in order, then the pick on the alias table) without
//! changing anything observable; `commit_draw` applies a passed plan and `count` a refused or
//! replayed one, each returning the effect to replicate.
//!
//! Time (`now`, Unix ms) and randomness (`Uniform`) come in as arguments, so every rule is
//! unit-tested, and so a replica applies a draw's effect without reading a clock or drawing.

use super::alias::{AliasTable, Uniform};
use super::campaign::{
    day_of, ms_to_next_day, Campaign, Counters, DrawReply, Outcome, Plan, SoldOut, StreamId,
    REJECTION_COUNT,
};
use super::effect::{DrawEffect, Effect, PrizeDelta, COUNT_REPLAYS};
use super::flow::{self, Gate, Swept, PPM};
use super::reqcache::Remembered;
use super::users::{UserDay, UserWins};

impl Campaign {
    /// Builds the alias table if the prizes changed. Under SOLDOUT REDRAW, prizes that cannot
    /// be won (sold out, or paced and ahead of their pace at `now`) get weight 0, so a draw
    /// picks among the others with exactly their relative odds.
    fn ensure_table(&mut self, now: i64) {
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
        let prizes = &self.prizes;
        self.table_paced = self
            .ids
            .paced
            .iter()
            .map(|&i| prizes[i as usize].available(window, now))
            .collect();
        self.table_dirty = false;
    }

    pub(crate) fn chances_left(&self, day: &UserDay, today: i64) -> i64 {
        match self.rules.daily {
            None => -1,
            Some(d) => {
                let used = if day.last_draw_ms != 0
                    && day_of(day.last_draw_ms, self.rules.dayoffset_min) == today
                {
                    day.draws_today
                } else {
                    0
                };
                i64::from(d.saturating_sub(used)) + i64::from(day.bonus)
            }
        }
    }

    /// The user's day state as of `now` (draws_today reset on a new day) and wins record,
    /// with one lookup.
    pub(crate) fn user_state(&self, key: u128, now: i64) -> (UserDay, UserWins) {
        let (d, w) = self.users.get_both(key);
        (
            self.day_as_of(d.unwrap_or_default(), now),
            w.unwrap_or_default(),
        )
    }

    /// A day state as of `now` (draws_today reset on a new day).
    fn day_as_of(&self, mut d: UserDay, now: i64) -> UserDay {
        if d.last_draw_ms != 0
            && day_of(d.last_draw_ms, self.rules.dayoffset_min)
                != day_of(now, self.rules.dayoffset_min)
        {
            d.draws_today = 0;
        }
        d
    }

    fn reject(
        &self,
        outcome: Outcome,
        day: &UserDay,
        today: i64,
        wait_ms: i64,
        gate: Gate,
    ) -> Plan {
        Plan::Reject(
            DrawReply {
                outcome,
                prize: 0,
                win_id: None,
                chances_left: self.chances_left(day, today),
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

    /// Decides a draw by `user` (from `client`, a client key, if given) without changing
    /// anything observable. Check order: REQID replay, window, pause, client (penalty,
    /// CLIENTLIMIT), ban, MAXWINS, cooldown, daily chances, ADMIT, RATE; then the pick, with
    /// paced prizes held back while they are ahead of their pace.
    pub fn plan_draw_from<U: Uniform + ?Sized>(
        &mut self,
        user: u128,
        request: Option<u128>,
        client: Option<u128>,
        now: i64,
        rng: &mut U,
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
        let today = day_of(now, self.rules.dayoffset_min);
        let (day, wins) = self.user_state(user, now);
        let mut gate = Gate {
            user,
            ..Gate::default()
        };
        if let Some((start, end)) = self.rules.window {
            if now < start {
                let wait = start.saturating_sub(now);
                return self.reject(Outcome::NotStarted, &day, today, wait, gate);
            }
            if now >= end {
                return self.reject(Outcome::Ended, &day, today, 0, gate);
            }
        }
        if self.paused {
            return self.reject(Outcome::Paused, &day, today, 0, gate);
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
                return self.reject(Outcome::Limited, &day, today, wait, gate);
            }
        }
        if let Some(until) = self.bans.get(user) {
            if until > now {
                let wait = until.saturating_sub(now);
                return self.reject(Outcome::Banned, &day, today, wait, gate);
            }
        }
        if let Some(max) = self.rules.maxwins {
            if wins.wins >= max {
                return self.reject(Outcome::AlreadyWon, &day, today, 0, gate);
            }
        }
        if day.last_draw_ms != 0 && self.rules.cooldown_ms > 0 {
            let cd = i64::try_from(self.rules.cooldown_ms).unwrap_or(i64::MAX);
            let ready = day.last_draw_ms.saturating_add(cd);
            if now < ready {
                let wait = ready.saturating_sub(now);
                return self.reject(Outcome::Cooldown, &day, today, wait, gate);
            }
        }
        if let Some(d) = self.rules.daily {
            if day.draws_today >= d && day.bonus == 0 {
                let wait = if d == 0 {
                    -1
                } else {
                    ms_to_next_day(now, self.rules.dayoffset_min)
                };
                return self.reject(Outcome::Quota, &day, today, wait, gate);
            }
        }
        if let Some((p1, p2)) = self.rules.admit {
            let was_waiting = self.admit_waiting(user, now);
            let p = if was_waiting { p2 } else { p1 };
            if p < PPM && rng.below(u64::from(PPM)) >= u64::from(p) {
                if !was_waiting {
                    gate.waiting = Some(true);
                }
                return self.reject(Outcome::Retry, &day, today, 0, gate);
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
                    return self.reject(Outcome::Busy, &day, today, wait, gate);
                }
            }
        }
        self.ensure_table(now);
        let prize = match self.table.pick(rng) {
            Some(i) => self.resolve(i as usize, now),
            None => None,
        };
        Plan::Pass {
            prize,
            seq: self.counters.draws.saturating_add(1),
            day,
            gate,
        }
    }

    /// The prize a table entry gives under the sold-out policy (None: a loss).
    fn resolve(&self, entry: usize, now: i64) -> Option<usize> {
        let p = self.prizes.get(entry)?; // the last entry (NOTHING) is not a prize
        let w = self.rules.window;
        if p.available(w, now) {
            return Some(entry);
        }
        match self.rules.soldout {
            SoldOut::Lose | SoldOut::Redraw => None,
            SoldOut::Fallback => {
                let f = self.rules.fallback.as_deref()?;
                let i = self.prize_index(f)?;
                self.prizes
                    .get(i)
                    .filter(|p| p.available(w, now))
                    .map(|_| i)
            }
        }
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
        let today = day_of(now, self.rules.dayoffset_min);
        let (prize, mut day, gate) = match *plan {
            Plan::Pass {
                prize, day, gate, ..
            } => (prize, day, gate),
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
            Some((i, p.name, p.stock, p.sold, p.pending))
        });
        let wins = self
            .users
            .commit_draw(user, day, won.map(|(_, name, ..)| name));
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
        };
        let mut reply = DrawReply {
            outcome: Outcome::Lose,
            prize: 0,
            win_id: None,
            chances_left: self.chances_left(&day, today),
            wait_ms: i64::try_from(self.rules.cooldown_ms).unwrap_or(i64::MAX),
        };
        if let Some((i, name, stock, sold, pending)) = won {
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
                eff.request = Some((rk, rem));
            }
        }
        self.reqs.evict(now, self.rules.idempotency_ms);
        eff.swept = self.sweep(now);
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
