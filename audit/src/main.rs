//! lottery-audit: verifies a VERIFIABLE campaign's draws from its wins stream or from
//! lottery-writer's database (README.md). The work is in the library (lib.rs).

use lottery_audit::{check, construction, report, source};

use clap::Parser;
use std::ffi::OsString;
use std::time::Duration;

/// Exit codes: 0 every check passed, 1 a mismatch (tampering or a wrong seed), 2 usage or
/// connection error.
const EXIT_MISMATCH: i32 = 1;
const EXIT_ERROR: i32 = 2;

#[derive(Parser)]
#[command(
    name = "lottery-audit",
    about = "Verifies a redis-lottery VERIFIABLE campaign's draws: commitments, every draw's pick, every win",
    group(clap::ArgGroup::new("source").required(true).args(["redis", "db"]))
)]
struct Args {
    /// Read the campaign's wins stream: redis://[:PASSWORD@]HOST:PORT[/DB].
    #[arg(long)]
    redis: Option<String>,
    /// Read lottery-writer's tables instead: sqlite:PATH, postgres://... or mysql://...
    #[arg(long)]
    db: Option<String>,
    /// The campaign key (the key the draws' words were computed with).
    #[arg(long)]
    campaign: OsString,
    /// The wins stream (--redis); by default asked of the module (LOTTERY.STATS).
    #[arg(long)]
    stream: Option<OsString>,
    /// A revealed seed: EPOCH=HEX (64 lowercase hex digits); repeatable.
    #[arg(long = "seed", value_name = "EPOCH=HEX")]
    seeds: Vec<String>,
    /// The report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Entries per XRANGE page.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    page: u64,
    /// Connect, read and write timeout, in milliseconds.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    timeout_ms: u64,
}

fn parse_seed_arg(s: &str) -> Result<(u64, String), String> {
    let (n, hex) = s
        .split_once('=')
        .ok_or_else(|| format!("--seed {:?}: expected EPOCH=HEX", s))?;
    let n = n
        .parse::<u64>()
        .map_err(|_| format!("--seed: epoch {:?} is not a number", n))?;
    if construction::parse_seed(hex.as_bytes()).is_none() {
        return Err(format!(
            "--seed {}=...: the seed must be 64 lowercase hex digits",
            n
        ));
    }
    Ok((n, hex.to_string()))
}

fn run(a: &Args) -> Result<check::Report, String> {
    let seeds = a
        .seeds
        .iter()
        .map(|s| parse_seed_arg(s))
        .collect::<Result<Vec<_>, _>>()?;
    let timeout = Duration::from_millis(a.timeout_ms);
    let campaign = a.campaign.as_encoded_bytes().to_vec();
    match (&a.redis, &a.db) {
        (Some(url), None) => {
            let mut con = source::connect(url, timeout)?;
            let stream = match &a.stream {
                Some(s) => s.as_encoded_bytes().to_vec(),
                None => source::stream_of(&mut con, &campaign)?,
            };
            // Two passes over the stream up to its last entry now, keeping no entry: the
            // epochs, tables and revealed seeds first (a reveal entry follows the draws of its
            // epoch), then every draw and win.
            let end = source::last_id(&mut con, &stream)?;
            let page = a.page as usize;
            let mut audit = check::Audit::new(&campaign, &seeds);
            let refused =
                source::read_stream(&mut con, &stream, page, end, &mut |e| audit.meta(e))?;
            audit.refused(&refused);
            audit.settle();
            source::read_stream(&mut con, &stream, page, end, &mut |e| audit.entry(e))?;
            Ok(audit.finish())
        }
        (None, Some(url)) => {
            let name = a
                .campaign
                .to_str()
                .ok_or("--db: the campaign key must be UTF-8 (as lottery-writer stores it)")?;
            let read = source::read_db(url, name, timeout)?;
            Ok(check::audit(
                &campaign,
                &read.entries,
                &seeds,
                &read.refused,
            ))
        }
        _ => Err("give one of --redis, --db".into()),
    }
}

fn main() {
    let a = Args::parse();
    match run(&a) {
        Ok(r) => {
            if a.json {
                println!("{}", report::json(&r));
            } else {
                print!("{}", report::text(&r));
            }
            std::process::exit(if r.mismatches == 0 { 0 } else { EXIT_MISMATCH });
        }
        Err(e) => {
            eprintln!("lottery-audit: {}", e);
            std::process::exit(EXIT_ERROR);
        }
    }
}
