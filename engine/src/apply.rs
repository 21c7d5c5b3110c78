//! Applying a replicated effect (`Campaign::apply`) on a replica or while loading the AOF:
//! absolute values in, no clock read and nothing drawn, so the copy ends equal to the master.

use super::campaign::{Campaign, ConfigChange, Outcome, REJECTION_COUNT};
use super::codec::{DResult, DecodeError};
use super::effect::{Effect, COUNT_REPLAYS};
use super::flow::ClientState;
use super::ledger::Direction;
use super::parse;
use super::persist;

/// The change a `Configure` effect's options describe.
fn configure_change(args: &[Vec<u8>]) -> DResult<ConfigChange> {
    let opts: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    parse::configure_args(&opts).map_err(|_| DecodeError("configure effect with bad options"))
}

/// The campaign an effect creates on a missing key (`Config` or a creating `Configure`), or
/// None for an effect that needs an existing campaign.
pub fn created_campaign(e: &Effect) -> Option<DResult<Campaign>> {
    match e {
        Effect::Config(meta) => Some(persist::decode_meta(meta)),
        Effect::Configure {
            created: Some((seed, stream)),
            args,
        } => Some(configure_change(args).and_then(|change| {
            Campaign::create(&change, *seed, stream.clone())
                .map_err(|_| DecodeError("configure effect refused"))
        })),
        _ => None,
    }
}

impl Campaign {
    /// Applies a replicated effect. Errors (a corrupt or mismatched effect) leave the campaign
    /// unchanged. `Config` on a missing campaign is handled by the caller (`persist`).
    pub fn apply(&mut self, e: &Effect) -> DResult<()> {
        // Counters set from outside are no longer this copy's own unsent counts.
        match e {
            Effect::Stats { .. } | Effect::Config(_) => self.host.unsent = Default::default(),
            Effect::Count { which, .. } => {
                let i = Outcome::from_u8(*which)
                    .and_then(Outcome::rejection_index)
                    .unwrap_or(REJECTION_COUNT);
                if let Some(u) = self.host.unsent.get_mut(i) {
                    *u = 0;
                }
            }
            _ => {}
        }
        match e {
            Effect::Config(b) => persist::apply_meta(self, b)?,
            Effect::Configure {
                created: None,
                args,
            } => {
                let change = configure_change(args)?;
                self.configure(&change)
                    .map_err(|_| DecodeError("configure effect refused"))?;
            }
            Effect::Configure {
                created: Some(_), ..
            } => return Err(DecodeError("configure effect creates an existing campaign")),
            Effect::Chunk(b) => persist::load_chunk(self, b)?,
            Effect::Seed(v) => self.set_verifiable(*v),
            Effect::Draw(d) => {
                if let Some(p) = &d.prize {
                    let prize = self
                        .prizes
                        .get_mut(p.index as usize)
                        .ok_or(DecodeError("prize index out of range"))?;
                    let was_out = !prize.in_stock();
                    prize.stock = p.stock;
                    prize.sold = p.sold;
                    prize.pending = p.pending;
                    if was_out == prize.in_stock() {
                        self.invalidate_table();
                    }
                }
                if let (Some(code), Some(p)) = (&d.code, &d.prize) {
                    // The code the master handed out, wherever it is in this copy's order.
                    let (name, seed) = (self.prizes[p.index as usize].name, self.seed);
                    self.codes.pool_mut(name, seed).take_exact(code);
                }
                match d.life {
                    Some(l) => self.users.insert_all(d.user, d.day, d.wins, l),
                    None => self.users.insert_both(d.user, d.day, d.wins),
                }
                self.counters.draws = d.total_draws;
                self.counters.wins = d.total_wins;
                self.counters.losses = d.total_losses;
                if let Some((k, m)) = d.request {
                    self.reqs.insert(k, m);
                    if let Some(code) = &d.code {
                        self.reqs.insert_code(k, code.clone());
                    }
                }
                self.apply_gate(&d.gate, d.now);
                self.reqs.evict(d.now, self.rules.idempotency_ms);
                self.apply_swept(&d.swept);
            }
            Effect::Count {
                now,
                which,
                value,
                gate,
                swept,
            } => {
                if let Some(g) = gate {
                    self.apply_gate(g, *now);
                }
                if *which == COUNT_REPLAYS {
                    self.counters.replays = *value;
                } else if let Some(c) = Outcome::from_u8(*which)
                    .and_then(Outcome::rejection_index)
                    .and_then(|i| self.counters.rejected.get_mut(i))
                {
                    *c = *value;
                }
                self.reqs.evict(*now, self.rules.idempotency_ms);
                self.apply_swept(swept);
            }
            Effect::Stats { replays, rejected } => {
                self.counters.replays = *replays;
                self.counters.rejected = *rejected;
            }
            Effect::User { user, day } => self.users.insert(*user, *day),
            Effect::Stock { index, stock } => {
                let p = self
                    .prizes
                    .get_mut(*index as usize)
                    .ok_or(DecodeError("prize index out of range"))?;
                if p.stock.is_none() || p.codes {
                    return Err(DecodeError("stock effect on an INF or code prize"));
                }
                p.stock = Some(*stock);
                self.invalidate_table();
            }
            Effect::Paused(p) => self.paused = *p,
            Effect::Ban { user, until } => self.set_ban(*user, *until),
            Effect::Unban { user } => {
                self.bans.remove(*user);
            }
            Effect::Drain { seq, batch } => {
                for p in self.prizes.iter_mut().chain(self.retired.iter_mut()) {
                    p.pending = 0;
                }
                self.drain_seq = *seq;
                self.last_batch = batch.clone();
            }
            Effect::Client { key, state } => {
                if *state == ClientState::default() {
                    self.clients.remove(*key);
                } else {
                    self.clients.insert(*key, *state);
                }
            }
            Effect::Codes { prize, add, codes } => {
                let codes: Vec<&[u8]> = codes.iter().map(Vec::as_slice).collect();
                let done = if *add {
                    self.add_codes(prize, &codes)
                } else {
                    self.remove_codes(prize, &codes)
                };
                done.map_err(|_| DecodeError("codes effect on a wrong prize"))?;
            }
            Effect::Transfer { record, stock } => {
                if let Some((i, _)) = *stock {
                    match self.prizes.get(i as usize) {
                        Some(p)
                            if p.stock.is_some()
                                && p.id == record.prize
                                && (p.codes || record.codes.is_empty()) => {}
                        _ => return Err(DecodeError("transfer effect on a wrong prize")),
                    }
                } else if !record.codes.is_empty() {
                    return Err(DecodeError("transfer effect with codes and no stock"));
                }
                if self.transfers.get(&record.id).is_none() && !self.transfers.has_room() {
                    return Err(DecodeError("too many transfer records"));
                }
                // As on the master (`record_transfer`): prune, store, prune.
                self.transfers.prune();
                if let Some((i, v)) = *stock {
                    let i = i as usize;
                    if self.prizes[i].codes {
                        // The codes the master's OUT took (wherever they are in this copy's
                        // order), or those its IN added; the stock is the pool's.
                        let (name, seed) = (self.prizes[i].name, self.seed);
                        if record.direction == Direction::Out {
                            self.codes.move_out_exact(name, seed, &record.codes);
                        } else {
                            let codes: Vec<&[u8]> =
                                record.codes.iter().map(Vec::as_slice).collect();
                            self.codes.bring_in(name, seed, &codes);
                        }
                        let unused = self.codes.unused(name);
                        self.set_stock(i, unused);
                    } else {
                        self.set_stock(i, v);
                    }
                }
                self.transfers.put((**record).clone());
                self.transfers.prune();
            }
        }
        Ok(())
    }
}
