//! The checks, over every entry of a campaign in ID order (see README.md, "What it checks").

use crate::construction::{commitment, parse_seed, Words};
use crate::entry::{decimal, short, Entry, Id};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Mismatches listed in the report at most (all are counted).
pub const LISTED: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedState {
    /// A revealed seed matches the commitment.
    Verified,
    /// A seed was given (reveal entry or --seed) and none matches the commitment.
    Mismatch,
    Unrevealed,
}

#[derive(Debug, Clone)]
pub struct Epoch {
    pub n: u64,
    pub from_draw: u64,
    pub commitment: String,
    pub state: SeedState,
    seed: Option<[u8; 32]>,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub tier: Vec<u8>,
    pub from_draw: u64,
    /// (prize id, weight), NOTHING last (its id: empty).
    pub entries: Vec<(Vec<u8>, u64)>,
    /// The weights' prefix sums (the last: W, below 2^64; 0 for a table that takes no word),
    /// computed once.
    prefix: Vec<u64>,
    /// Prize id -> weight (NOTHING not included).
    weight_of: HashMap<Vec<u8>, u64>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub entries_read: usize,
    pub epochs: Vec<Epoch>,
    pub tables: Vec<Table>,
    pub draws: usize,
    pub draws_checked: usize,
    pub draws_unverifiable: usize,
    pub wins: usize,
    pub wins_checked: usize,
    /// Wins drawn before the first epoch (the campaign was not verifiable yet).
    pub wins_before_verifiable: usize,
    /// Draw entries with a prize whose win entry was not read: the first entry read (the
    /// stream trimmed between the two), so not cross-checked.
    pub draw_wins_unchecked: usize,
    pub unknown_entries: usize,
    pub mismatches: usize,
    /// The first `LISTED`: (entry ID or source, reason).
    pub listed: Vec<(String, String)>,
}

impl Report {
    pub fn mismatch(&mut self, at: impl ToString, why: impl Into<String>) {
        self.mismatches += 1;
        if self.listed.len() < LISTED {
            self.listed.push((at.to_string(), why.into()));
        }
    }
}

/// One draw entry's fields.
struct Draw<'a> {
    id: Id,
    s: u64,
    user: &'a [u8],
    outcome: &'a [u8],
    pick: &'a [u8],
    tier: &'a [u8],
    rule: Option<&'a [u8]>,
}

/// Runs every check. `seeds`: (epoch, seed hex, where it came from) given on the command line.
pub fn audit(
    campaign: &[u8],
    entries: &[Entry],
    seeds: &[(u64, String)],
    refused: &[(String, String)],
) -> Report {
    let mut r = Report {
        entries_read: entries.len() + refused.len(),
        ..Report::default()
    };
    for (at, why) in refused {
        r.mismatch(at, format!("entry refused: {}", why));
    }
    let mut epochs: BTreeMap<u64, Epoch> = BTreeMap::new();
    let mut tables: Vec<Table> = Vec::new();
    let mut draws: Vec<Draw> = Vec::new();
    let mut wins: Vec<(Id, &[u8], &[u8], u64)> = Vec::new();
    let mut given: Vec<(u64, Vec<u8>, String)> = seeds
        .iter()
        .map(|(n, h)| (*n, h.as_bytes().to_vec(), format!("--seed {}=...", n)))
        .collect();

    for e in entries {
        let Some(kind) = e.kind() else {
            // A win entry: user prize draw.
            match (
                e.get(b"user"),
                e.get(b"prize"),
                e.get(b"draw").and_then(decimal),
            ) {
                (Some(u), Some(p), Some(s)) => wins.push((e.id, u, p, s)),
                _ => r.mismatch(e.id, "win entry without user, prize or draw"),
            }
            continue;
        };
        let first_is_type = e.fields.first().is_some_and(|(k, _)| k == b"type");
        if !first_is_type {
            r.mismatch(e.id, "typed entry whose first field is not type");
            continue;
        }
        match kind {
            b"epoch" => {
                let n = e.get(b"epoch").and_then(decimal);
                let from = e.get(b"from_draw").and_then(decimal);
                let c = e.get(b"commitment").filter(|c| parse_seed(c).is_some());
                let (Some(n), Some(from_draw), Some(c)) = (n, from, c) else {
                    r.mismatch(e.id, "malformed epoch entry");
                    continue;
                };
                let c = String::from_utf8_lossy(c).into_owned();
                if let Some(old) = epochs.get(&n) {
                    if old.from_draw != from_draw || old.commitment != c {
                        r.mismatch(e.id, format!("epoch {} published twice, differently", n));
                    }
                    continue;
                }
                epochs.insert(
                    n,
                    Epoch {
                        n,
                        from_draw,
                        commitment: c,
                        state: SeedState::Unrevealed,
                        seed: None,
                    },
                );
            }
            b"reveal" => match (e.get(b"epoch").and_then(decimal), e.get(b"seed")) {
                (Some(n), Some(seed)) => given.push((n, seed.to_vec(), format!("reveal {}", e.id))),
                _ => r.mismatch(e.id, "malformed reveal entry"),
            },
            b"table" => match parse_table(e) {
                Ok(t) => tables.push(t),
                Err(why) => r.mismatch(e.id, why),
            },
            b"draw" => {
                let s = e.get(b"draw").and_then(decimal);
                match (s, e.get(b"user"), e.get(b"outcome"), e.get(b"pick")) {
                    (Some(s), Some(user), Some(outcome), Some(pick)) => draws.push(Draw {
                        id: e.id,
                        s,
                        user,
                        outcome,
                        pick,
                        tier: e.get(b"tier").unwrap_or_default(),
                        rule: e.get(b"rule"),
                    }),
                    _ => r.mismatch(e.id, "malformed draw entry"),
                }
            }
            _ => r.unknown_entries += 1,
        }
    }

    // Epoch numbers run 1, 2, ... with growing from_draw: a gap is a deleted epoch entry.
    let mut prev: Option<&Epoch> = None;
    for (i, ep) in epochs.values().enumerate() {
        let want = prev.map_or(1, |p| p.n + 1);
        if ep.n != want && i == 0 {
            r.mismatch(
                format!("epoch {}", ep.n),
                format!(
                    "the first epoch entry is epoch {}, not 1: an epoch entry is missing",
                    ep.n
                ),
            );
        } else if ep.n != want {
            r.mismatch(
                format!("epoch {}", ep.n),
                format!("epoch {} has no epoch entry", want),
            );
        }
        if prev.is_some_and(|p| p.from_draw > ep.from_draw) {
            r.mismatch(format!("epoch {}", ep.n), "from_draw goes back");
        }
        prev = Some(ep);
    }
    // Seeds: each must match its epoch's commitment.
    for (n, hex, from) in &given {
        let Some(ep) = epochs.get_mut(n) else {
            r.mismatch(
                from,
                format!("a seed for epoch {}, which has no epoch entry", n),
            );
            continue;
        };
        match parse_seed(hex) {
            Some(seed) if commitment(&seed) == ep.commitment => {
                ep.state = SeedState::Verified;
                ep.seed = Some(seed);
            }
            Some(_) => {
                if ep.state != SeedState::Verified {
                    ep.state = SeedState::Mismatch;
                }
                r.mismatch(
                    from,
                    format!("the seed of epoch {} does not match its commitment", n),
                );
            }
            None => r.mismatch(
                from,
                format!("the seed of epoch {} is not 64 lowercase hex digits", n),
            ),
        }
    }

    // The table in force for (tier, s): the latest entry of the tier with from_draw <= s.
    let mut by_tier: HashMap<&[u8], BTreeMap<u64, usize>> = HashMap::new();
    for (i, t) in tables.iter().enumerate() {
        by_tier.entry(&t.tier).or_default().insert(t.from_draw, i);
    }
    // No epoch at all: nothing can be verified (the campaign is not VERIFIABLE, or every
    // epoch entry was deleted).
    if epochs.is_empty() {
        r.mismatch("epochs", "no epoch entry: nothing is verifiable");
    }

    // Draws.
    let mut by_draw: HashMap<u64, usize> = HashMap::new();
    let ep_list: Vec<&Epoch> = epochs.values().collect();
    for (i, d) in draws.iter().enumerate() {
        r.draws += 1;
        if by_draw.contains_key(&d.s) {
            r.mismatch(d.id, format!("draw {} appears twice", d.s));
            continue;
        }
        by_draw.insert(d.s, i);
        let Some(ep) = ep_list.iter().rev().find(|e| e.from_draw <= d.s) else {
            r.mismatch(d.id, format!("draw {}: no epoch in force", d.s));
            continue;
        };
        let in_force = by_tier
            .get(d.tier)
            .and_then(|m| m.range(..=d.s).next_back())
            .map(|(_, &i)| &tables[i]);
        let Some(t) = in_force else {
            r.mismatch(
                d.id,
                format!(
                    "draw {}: no table in force for tier {:?}",
                    d.s,
                    short(d.tier)
                ),
            );
            continue;
        };
        let Some(seed) = ep.seed else {
            r.draws_unverifiable += 1;
            continue;
        };
        r.draws_checked += 1;
        check_draw(&mut r, campaign, &seed, t, d);
    }

    // Draws that won: each has its win entry (the module appends it right before the draw
    // entry), unless the draw entry is the first entry read (the stream was trimmed between
    // the two). A win entry that disagrees is reported below, from the win's side.
    let won: HashSet<u64> = wins.iter().map(|w| w.3).collect();
    let first = entries.first().map(|e| e.id);
    for d in draws
        .iter()
        .filter(|d| !d.outcome.is_empty() && !won.contains(&d.s))
    {
        if Some(d.id) == first {
            r.draw_wins_unchecked += 1;
        } else {
            r.mismatch(
                d.id,
                format!(
                    "draw {} won {:?} and has no win entry",
                    d.s,
                    short(d.outcome)
                ),
            );
        }
    }

    // Wins: each has its draw entry, same user and outcome.
    let first_from = ep_list.first().map(|e| e.from_draw);
    for (id, user, prize, s) in wins {
        r.wins += 1;
        if first_from.is_none_or(|f| s < f) {
            r.wins_before_verifiable += 1;
            continue;
        }
        r.wins_checked += 1;
        match by_draw.get(&s).map(|&i| &draws[i]) {
            None => r.mismatch(id, format!("win of draw {} has no draw entry", s)),
            Some(d) if d.user != user || d.outcome != prize => r.mismatch(
                id,
                format!(
                    "win of draw {} (user {:?}, prize {:?}) differs from its draw entry (user {:?}, outcome {:?})",
                    s,
                    short(user),
                    short(prize),
                    short(d.user),
                    short(d.outcome)
                ),
            ),
            Some(_) => {}
        }
    }
    r.epochs = epochs.into_values().collect();
    r.tables = tables;
    r
}

fn parse_table(e: &Entry) -> Result<Table, String> {
    // type, from_draw, tier, then the pairs.
    let names: Vec<&[u8]> = e.fields.iter().take(3).map(|(k, _)| k.as_slice()).collect();
    if names != [&b"type"[..], b"from_draw", b"tier"] {
        return Err("malformed table entry (type from_draw tier first)".into());
    }
    let from_draw = decimal(&e.fields[1].1).ok_or("table entry with a bad from_draw")?;
    let pairs = &e.fields[3..];
    if pairs.last().map(|(k, _)| k.as_slice()) != Some(b"NOTHING") {
        return Err("table entry whose last pair is not NOTHING".into());
    }
    let mut entries = Vec::with_capacity(pairs.len());
    for (i, (k, w)) in pairs.iter().enumerate() {
        let w = decimal(w).ok_or("table entry with a bad weight")?;
        let id = if i + 1 == pairs.len() {
            Vec::new()
        } else {
            k.clone()
        };
        entries.push((id, w));
    }
    let mut prefix = Vec::with_capacity(entries.len());
    let mut sum = 0u64;
    for (_, w) in &entries {
        sum = sum
            .checked_add(*w)
            .ok_or("table entry whose weights sum beyond 64 bits")?;
        prefix.push(sum);
    }
    let weight_of = entries[..entries.len() - 1]
        .iter()
        .map(|(p, w)| (p.clone(), *w))
        .collect();
    Ok(Table {
        tier: e.fields[2].1.clone(),
        from_draw,
        entries,
        prefix,
        weight_of,
    })
}

fn check_draw(r: &mut Report, campaign: &[u8], seed: &[u8; 32], t: &Table, d: &Draw) {
    // x = the first "uniform below W"; the pick: the first entry whose prefix sum exceeds x.
    // W = 0 (every weight 0) takes no word: the pick is the last entry, NOTHING.
    let total = *t.prefix.last().expect("a table ends with NOTHING");
    let (x, i) = if total == 0 {
        (None, t.entries.len() - 1)
    } else {
        let Some(x) = Words::new(seed, campaign, d.s).uniform(total) else {
            r.mismatch(d.id, format!("draw {}: no pick from its table", d.s));
            return;
        };
        (Some(x), t.prefix.partition_point(|&p| p <= x))
    };
    let want = &t.entries[i].0;
    if d.pick != want.as_slice() {
        let x = x.map_or("none: the weights sum to 0".into(), |x| x.to_string());
        r.mismatch(
            d.id,
            format!(
                "draw {}: pick {:?}, recomputed {:?} (x = {})",
                d.s,
                short(d.pick),
                short(want),
                x
            ),
        );
        return;
    }
    match d.rule {
        None if d.outcome != d.pick => r.mismatch(
            d.id,
            format!(
                "draw {}: outcome {:?} differs from its pick {:?} with no rule",
                d.s,
                short(d.outcome),
                short(d.pick)
            ),
        ),
        None => {}
        Some(rule) => {
            if let Err(why) = rule_allows(rule, d.outcome, d.pick, t) {
                r.mismatch(
                    d.id,
                    format!(
                        "draw {}: rule {} with pick {:?} and outcome {:?}: {}",
                        d.s,
                        short(rule),
                        short(d.pick),
                        short(d.outcome),
                        why
                    ),
                );
            }
        }
    }
}

/// What the module writes with a `rule`: only when the rule changed the outcome from the
/// pick. `soldout`, `redraw` and `fallback` follow a picked prize that cannot be won now:
/// `soldout` gives a loss, `redraw` a loss or a prize of the table with a weight, `fallback` a
/// loss or any prize of the table; `guarantee` gives a prize of the table with a weight,
/// whatever the pick.
fn rule_allows(rule: &[u8], outcome: &[u8], pick: &[u8], t: &Table) -> Result<(), &'static str> {
    if !matches!(rule, b"soldout" | b"redraw" | b"fallback" | b"guarantee") {
        return Err("unknown rule");
    }
    let weighted = t.weight_of.get(outcome).is_some_and(|&w| w > 0);
    let ok = match rule {
        b"soldout" | b"redraw" | b"fallback" if pick.is_empty() => {
            return Err("the rule follows a picked prize, not NOTHING")
        }
        _ if outcome == pick => {
            return Err("a rule is given only when the outcome differs from the pick")
        }
        b"soldout" => outcome.is_empty(),
        b"redraw" => outcome.is_empty() || weighted,
        b"fallback" => outcome.is_empty() || t.weight_of.contains_key(outcome),
        _ => weighted, // guarantee
    };
    if ok {
        return Ok(());
    }
    Err(match rule {
        b"soldout" => "soldout gives a loss (NOTHING)",
        b"fallback" => "the outcome is not NOTHING nor a prize of the table",
        b"guarantee" => "the outcome is not a prize of the table with a weight",
        _ => "the outcome is not NOTHING nor a prize of the table with a weight",
    })
}
