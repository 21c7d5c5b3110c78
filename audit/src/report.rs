//! The report: plain text, or JSON (`--json`).

use crate::check::{Report, SeedState, LISTED};
use crate::entry::show;
use serde_json::json;

fn state(s: &SeedState) -> &'static str {
    match s {
        SeedState::Verified => "yes",
        SeedState::Mismatch => "no",
        SeedState::Unrevealed => "unrevealed",
    }
}

pub fn text(r: &Report) -> String {
    let mut o = String::new();
    let mut line = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    line(format!("entries read: {}", r.entries_read));
    line(format!("epochs: {}", r.epochs.len()));
    for e in &r.epochs {
        line(format!(
            "  epoch {} from_draw {} commitment {} verified {}",
            e.n,
            e.from_draw,
            e.commitment,
            state(&e.state)
        ));
    }
    line(format!("tables: {}", r.tables.len()));
    for t in &r.tables {
        line(format!(
            "  tier {:?} from_draw {} entries {}",
            show(&t.tier),
            t.from_draw,
            t.entries.len()
        ));
    }
    line(format!("draw entries: {}", r.draws));
    line(format!("draws checked: {}", r.draws_checked));
    line(format!(
        "draws unverifiable (seed not revealed): {}",
        r.draws_unverifiable
    ));
    line(format!("wins: {}", r.wins));
    line(format!("wins cross-checked: {}", r.wins_checked));
    line(format!(
        "wins before the first epoch (not verifiable): {}",
        r.wins_before_verifiable
    ));
    line(format!(
        "draws won whose win entry was trimmed (first entry read, not checked): {}",
        r.draw_wins_unchecked
    ));
    line(format!("entries of an unknown type: {}", r.unknown_entries));
    line(format!("mismatches: {}", r.mismatches));
    for (at, why) in &r.listed {
        line(format!("  {}: {}", at, why));
    }
    if r.mismatches > LISTED {
        line(format!("  ... and {} more", r.mismatches - LISTED));
    }
    line(format!(
        "result: {}",
        if r.mismatches == 0 { "ok" } else { "MISMATCH" }
    ));
    o
}

pub fn json(r: &Report) -> String {
    let v = json!({
        "entries_read": r.entries_read,
        "epochs": r.epochs.iter().map(|e| json!({
            "epoch": e.n,
            "from_draw": e.from_draw,
            "commitment": e.commitment,
            "verified": state(&e.state),
        })).collect::<Vec<_>>(),
        "tables": r.tables.iter().map(|t| json!({
            "tier": show(&t.tier),
            "from_draw": t.from_draw,
            "entries": t.entries.len(),
        })).collect::<Vec<_>>(),
        "draws": r.draws,
        "draws_checked": r.draws_checked,
        "draws_unverifiable": r.draws_unverifiable,
        "wins": r.wins,
        "wins_checked": r.wins_checked,
        "wins_before_verifiable": r.wins_before_verifiable,
        "draw_wins_unchecked": r.draw_wins_unchecked,
        "unknown_entries": r.unknown_entries,
        "mismatches": r.mismatches,
        "first_mismatches": r.listed.iter().map(|(at, why)| json!({"at": at, "reason": why})).collect::<Vec<_>>(),
        "ok": r.mismatches == 0,
    });
    v.to_string()
}
