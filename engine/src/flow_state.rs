//! The campaign's flow-control state (the rules themselves are in `flow`): storing what a
//! draw's checks changed, the bounded sweep of idle client records and expired ADMIT memory,
//! and the client penalty box (BAN/UNBAN CLIENT).

use super::campaign::Campaign;
use super::effect::Effect;
use super::flow::{self, ClientState, Gate, Swept, SWEEP_MAX, SWEEP_SLOTS};

impl Campaign {
    /// The bounded expiry step every draw and refusal takes on the master: walks a few slots
    /// of the client map and of the ADMIT map from where the last step stopped, and removes
    /// the client records that carry nothing any more (`ClientState::idle`) and the users
    /// ADMIT no longer remembers (`ADMIT_MEMORY_MS` after their refusal, or all of them
    /// under ADMIT OFF). The keys removed go into the effect (`apply_swept`).
    pub(crate) fn sweep(&mut self, now: i64) -> Swept {
        let mut out = Swept::default();
        if !self.clients.is_empty() {
            let limit = self.rules.client_limit;
            self.clients.sweep(
                &mut self.client_sweep,
                SWEEP_SLOTS,
                SWEEP_MAX,
                |_, s| s.idle(limit, now),
                |k| out.clients.push(k),
            );
        }
        if !self.waiting.is_empty() {
            let admit = self.rules.admit.is_some();
            self.waiting.sweep(
                &mut self.waiting_sweep,
                SWEEP_SLOTS,
                SWEEP_MAX,
                |_, since| !admit || !flow::admit_remembers(since, now),
                |k| out.waiting.push(k),
            );
        }
        out
    }

    /// Removes what a master's sweep removed (replicas, AOF loading).
    pub(crate) fn apply_swept(&mut self, s: &Swept) {
        for &k in &s.clients {
            self.clients.remove(k);
        }
        for &k in &s.waiting {
            self.waiting.remove(k);
        }
    }

    /// Whether ADMIT remembers `user` as turned away at `now`.
    pub(crate) fn admit_waiting(&self, user: u128, now: i64) -> bool {
        !self.waiting.is_empty()
            && self
                .waiting
                .get(user)
                .is_some_and(|since| flow::admit_remembers(since, now))
    }

    /// Stores what the flow-control checks of a draw changed (on the master when committing
    /// a plan, on replicas when applying its effect).
    pub(crate) fn apply_gate(&mut self, g: &Gate, now: i64) {
        if let Some(t) = g.tat_ns {
            self.tat_ns = t;
        }
        if let Some((k, st)) = g.client {
            self.clients.insert(k, st);
        }
        match g.waiting {
            Some(true) => self.waiting.insert(g.user, now),
            Some(false) => {
                self.waiting.remove(g.user);
            }
            None => {}
        }
        if let Some(until) = g.user_ban {
            self.set_ban(g.user, until);
        }
    }

    /// Puts a client in the penalty box until `until` (Unix ms).
    pub fn ban_client(&mut self, client: u128, until: i64) -> Effect {
        let mut st = self.clients.get(client).unwrap_or_default();
        st.banned_until = until;
        self.clients.insert(client, st);
        Effect::Client {
            key: client,
            state: st,
        }
    }

    /// Lifts a client's penalty and empties its CLIENTLIMIT window (its record goes); true
    /// if a penalty was active at `now`. The effect is None when the client has no state.
    pub fn unban_client(&mut self, client: u128, now: i64) -> (bool, Option<Effect>) {
        let Some(st) = self.clients.remove(client) else {
            return (false, None);
        };
        let until = st.banned_until;
        (
            until > now,
            Some(Effect::Client {
                key: client,
                state: ClientState::default(),
            }),
        )
    }
}
