//! A table entry (the weights in force) and one draw checked against it: the pick
//! recomputed from the seed, and the outcome a rule may give.

use crate::check::Report;
use crate::construction::Words;
use crate::entry::{decimal, short, Entry, Id};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct Table {
    pub tier: Vec<u8>,
    pub from_draw: u64,
    /// (prize id, weight), NOTHING last (its id: empty).
    pub entries: Vec<(Vec<u8>, u64)>,
    /// The weights' prefix sums (the last: W, below 2^64; 0 for a table that takes no word),
    /// computed once.
    pub(crate) prefix: Vec<u64>,
    /// Prize id -> weight (NOTHING not included).
    pub(crate) weight_of: HashMap<Vec<u8>, u64>,
}

/// One draw entry's fields.
pub(crate) struct Draw<'a> {
    pub(crate) id: Id,
    pub(crate) s: u64,
    pub(crate) user: &'a [u8],
    pub(crate) outcome: &'a [u8],
    pub(crate) pick: &'a [u8],
    pub(crate) tier: &'a [u8],
    pub(crate) rule: Option<&'a [u8]>,
}

pub(crate) fn parse_table(e: &Entry) -> Result<Table, String> {
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

pub(crate) fn check_draw(r: &mut Report, campaign: &[u8], seed: &[u8; 32], t: &Table, d: &Draw) {
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
