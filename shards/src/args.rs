//! The command line: the subcommands and their options, the seed nodes, and the checks that
//! need no server.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use lottery_cluster::configure::ConfigureOptions;
use lottery_cluster::descriptor::MAX_SHARDS;
use lottery_shards::cluster::normalise_seed;
use lottery_shards::error::{Error, Result};

use crate::commands::codes::{DEFAULT_BATCH, MAX_BATCH};
use crate::commands::seed::SeedAction;
use crate::commands::{name_ok, restock::parse_delta};

#[derive(Parser)]
#[command(
    name = "lottery-shards",
    version,
    about = "Creates, inspects, changes and rebalances a redis-lottery campaign sharded over a Redis Cluster"
)]
pub struct Cli {
    /// Any cluster node, redis://HOST:PORT (repeatable, or a comma list). Default: $LOTTERY_CLUSTER.
    #[arg(long, global = true, value_name = "redis://HOST:PORT")]
    pub cluster: Vec<String>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum CrashAfter {
    Out,
    In,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Create NAME with N shards: lottery-shards create NAME --shards N -- PRIZE id weight stock ...
    Create {
        name: String,
        #[arg(long)]
        shards: u32,
        /// LOTTERY.CONFIGURE options (after --); each finite PRIZE stock is split over the shards
        #[arg(last = true, required = true, value_name = "OPTIONS")]
        options: Vec<String>,
    },
    /// Print the descriptor, one `field = value` line each
    Describe { name: String },
    /// Print the shard of USER: `<index> <key>`
    Route {
        name: String,
        #[arg(value_parser = clap::value_parser!(OsString))]
        user: OsString,
    },
    /// Combined figures of every shard
    Stats {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Send LOTTERY.CONFIGURE options to every shard (PRIZE stocks split as in create)
    Configure {
        name: String,
        /// Run even while a rebalance holds the mover lease
        #[arg(long)]
        force: bool,
        #[arg(last = true, required = true, value_name = "OPTIONS")]
        options: Vec<String>,
    },
    /// Add (or, negative, take away) DELTA units of PRIZE, split across the shards
    Restock {
        name: String,
        prize: String,
        #[arg(allow_negative_numbers = true)]
        delta: String,
        /// Run even while a rebalance holds the mover lease
        #[arg(long)]
        force: bool,
    },
    /// Pause every shard
    Pause { name: String },
    /// Resume every shard
    Resume { name: String },
    /// Finish pending transfers, then even out every finite prize's remaining stock
    Rebalance {
        name: String,
        /// Keep rebalancing every MS milliseconds (10..=86400000) until SIGTERM/SIGINT
        #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(MIN_EVERY_MS..=MAX_EVERY_MS))]
        every_ms: Option<u64>,
        /// Leave out moves of fewer units
        #[arg(long, value_name = "N", default_value_t = 1)]
        min_move: u64,
        /// Fault tests: abort right after that step of the first transfer
        #[arg(long, value_enum)]
        crash_after: Option<CrashAfter>,
        /// Tests: the mover lease's length (default max(3 * every-ms, 10000))
        #[arg(long, value_name = "MS", hide = true, value_parser = clap::value_parser!(u64).range(100..=3 * MAX_EVERY_MS))]
        lease_ms: Option<u64>,
    },
    /// Conservation per prize: total == remaining + sold + in_flight (exit 1 when not)
    Check {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// The code pools of CODES prizes: add codes over the shards, count them
    Codes {
        #[command(subcommand)]
        cmd: CodesCmd,
    },
    /// A VERIFIABLE campaign's seeds: LOTTERY.SEED ROTATE|REVEAL on every shard
    Seed {
        name: String,
        #[arg(value_enum, ignore_case = true)]
        action: SeedAction,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum CodesCmd {
    /// Add the codes of FILE (one per line; `-`: stdin) to PRIZE, each on the shard it routes to
    Add {
        name: String,
        prize: String,
        #[arg(value_parser = clap::value_parser!(PathBuf))]
        file: PathBuf,
        /// Codes per LOTTERY.CODES ADD (1..=100000)
        #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH,
              value_parser = clap::value_parser!(u64).range(1..=MAX_BATCH))]
        batch: u64,
        /// Run even while a rebalance holds the mover lease
        #[arg(long)]
        force: bool,
    },
    /// Every shard's unused codes of PRIZE, and their sum
    Count { name: String, prize: String },
}

/// `--every-ms` bounds: no busy loop (a round every 10 ms at most), no lease longer than
/// three days (3 x the largest).
pub const MIN_EVERY_MS: u64 = 10;
pub const MAX_EVERY_MS: u64 = 86_400_000;

pub fn seeds(cli: &[String]) -> Result<Vec<String>> {
    let raw = if cli.is_empty() {
        std::env::var("LOTTERY_CLUSTER").unwrap_or_default()
    } else {
        cli.join(",")
    };
    raw.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(normalise_seed)
        .collect()
}

/// Checks what needs no server, before connecting.
pub fn check(cmd: &Cmd) -> Result<()> {
    match cmd {
        Cmd::Create {
            name,
            shards,
            options,
        } => {
            name_ok(name)?;
            if name.ends_with(":mover") {
                // Its descriptor key would be the mover lease of the campaign before ":mover".
                return Err(Error::Usage(format!(
                    "bad campaign name {name:?}: it must not end with \":mover\""
                )));
            }
            if !(1..=MAX_SHARDS).contains(shards) {
                return Err(Error::Usage(format!("--shards must be 1..={MAX_SHARDS}")));
            }
            ConfigureOptions::parse(options).map_err(Error::Usage)?;
        }
        Cmd::Configure { name, options, .. } => {
            name_ok(name)?;
            ConfigureOptions::parse(options).map_err(Error::Usage)?;
        }
        Cmd::Describe { name }
        | Cmd::Route { name, .. }
        | Cmd::Stats { name, .. }
        | Cmd::Restock { name, .. }
        | Cmd::Pause { name }
        | Cmd::Resume { name }
        | Cmd::Rebalance { name, .. }
        | Cmd::Check { name, .. }
        | Cmd::Seed { name, .. }
        | Cmd::Codes {
            cmd: CodesCmd::Add { name, .. } | CodesCmd::Count { name, .. },
        } => name_ok(name)?,
    }
    if let Cmd::Restock { delta, .. } = cmd {
        parse_delta(delta)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_parses() {
        let cli = Cli::try_parse_from([
            "lottery-shards",
            "--cluster",
            "redis://h:1",
            "create",
            "s",
            "--shards",
            "3",
            "--",
            "PRIZE",
            "p",
            "1",
            "10",
            "DAYOFFSET",
            "-60",
        ])
        .unwrap();
        assert!(
            matches!(cli.cmd, Cmd::Create { shards: 3, ref options, .. } if options.len() == 6)
        );
        let cli =
            Cli::try_parse_from(["x", "restock", "s", "p", "-5", "--cluster", "h:1"]).unwrap();
        assert!(matches!(cli.cmd, Cmd::Restock { ref delta, .. } if delta == "-5"));
        assert!(Cli::try_parse_from(["x", "rebalance", "s", "--crash-after", "oops"]).is_err());
        let cli = Cli::try_parse_from(["x", "restock", "s", "p", "-5", "--force"]).unwrap();
        assert!(matches!(cli.cmd, Cmd::Restock { force: true, .. }));
        let cli =
            Cli::try_parse_from(["x", "configure", "s", "--force", "--", "DAILY", "3"]).unwrap();
        assert!(
            matches!(cli.cmd, Cmd::Configure { force: true, ref options, .. } if options.len() == 2)
        );
        let cli = Cli::try_parse_from(["x", "configure", "s", "--", "--force"]).unwrap();
        assert!(matches!(cli.cmd, Cmd::Configure { force: false, .. }));
        let cli = Cli::try_parse_from(["x", "rebalance", "s", "--lease-ms", "1500"]).unwrap();
        assert!(matches!(
            cli.cmd,
            Cmd::Rebalance {
                lease_ms: Some(1500),
                ..
            }
        ));
        assert!(Cli::try_parse_from(["x", "rebalance", "s", "--lease-ms", "0"]).is_err());
        for bad in ["0", "9", "86400001", "18446744073709551615", "-1", "x"] {
            assert!(
                Cli::try_parse_from(["x", "rebalance", "s", "--every-ms", bad]).is_err(),
                "{bad}"
            );
        }
        for ok in ["10", "86400000"] {
            assert!(Cli::try_parse_from(["x", "rebalance", "s", "--every-ms", ok]).is_ok());
        }
        assert!(
            Cli::try_parse_from(["x", "rebalance", "s", "--lease-ms", "18446744073709551615"])
                .is_err()
        );
        assert_eq!(seeds(&["a:1,redis://b:2".into()]).unwrap().len(), 2);
    }

    #[test]
    fn codes_subcommands() {
        let cli = Cli::try_parse_from(["x", "codes", "add", "s", "card", "-"]).unwrap();
        assert!(matches!(
            cli.cmd,
            Cmd::Codes { cmd: CodesCmd::Add { ref name, ref prize, ref file, batch: 1000, force: false } }
                if name == "s" && prize == "card" && file.as_os_str() == "-"
        ));
        let cli = Cli::try_parse_from([
            "x", "codes", "add", "s", "card", "f.txt", "--batch", "5", "--force",
        ])
        .unwrap();
        assert!(matches!(
            cli.cmd,
            Cmd::Codes {
                cmd: CodesCmd::Add {
                    batch: 5,
                    force: true,
                    ..
                }
            }
        ));
        for bad in ["0", "100001", "-1", "x"] {
            assert!(
                Cli::try_parse_from(["x", "codes", "add", "s", "p", "f", "--batch", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(Cli::try_parse_from(["x", "codes", "add", "s", "p"]).is_err());
        let cli = Cli::try_parse_from(["x", "codes", "count", "s", "card"]).unwrap();
        assert!(matches!(
            cli.cmd,
            Cmd::Codes {
                cmd: CodesCmd::Count { .. }
            }
        ));
        assert!(check(&cli.cmd).is_ok());
        let cli = Cli::try_parse_from(["x", "codes", "count", "bad name", "card"]).unwrap();
        assert!(check(&cli.cmd).is_err());
    }

    #[test]
    fn seed_subcommand() {
        for (word, want) in [
            ("rotate", SeedAction::Rotate),
            ("REVEAL", SeedAction::Reveal),
        ] {
            let cli = Cli::try_parse_from(["x", "seed", "s", word, "--json"]).unwrap();
            assert!(matches!(
                cli.cmd,
                Cmd::Seed { ref name, action, json: true } if name == "s" && action == want
            ));
            assert!(check(&cli.cmd).is_ok());
        }
        for bad in [
            &["x", "seed", "s"][..],
            &["x", "seed", "s", "off"],
            &["x", "seed"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        let cli = Cli::try_parse_from(["x", "seed", "bad name", "rotate"]).unwrap();
        assert!(check(&cli.cmd).is_err());
    }

    #[test]
    fn verifiable_is_checked_before_connecting() {
        let run = |opts: &[&str]| {
            let mut a = vec!["x", "create", "s", "--shards", "3", "--"];
            a.extend_from_slice(opts);
            check(&Cli::try_parse_from(a).unwrap().cmd)
        };
        assert!(run(&["PRIZE", "p", "1", "3", "VERIFIABLE", "LOG", "ALL"]).is_ok());
        match run(&["PRIZE", "p", "1", "3", "VERIFIABLE", "OFF"]) {
            Err(Error::Usage(m)) => assert!(m.contains("cannot be turned off"), "{m}"),
            other => panic!("{:?}", other.err()),
        }
        assert!(run(&["VERIFIABLE", "LOG", "NONE"]).is_err());
    }

    #[test]
    fn new_configure_options_are_checked() {
        let ok = |opts: &[&str]| {
            let mut a = vec!["x", "configure", "s", "--"];
            a.extend_from_slice(opts);
            check(&Cli::try_parse_from(a).unwrap().cmd)
        };
        assert!(ok(&[
            "PRIZE",
            "card",
            "1",
            "CODES",
            "AFTER",
            "3",
            "GUARANTEE",
            "10"
        ])
        .is_ok());
        assert!(ok(&["TIER", "vip", "PRIZE-WEIGHT", "card", "5", "TOTAL", "INF"]).is_ok());
        assert!(ok(&["GUARANTEE", "10", "PRIZES", "2", "a"]).is_err());
        assert!(ok(&["PERIOD"]).is_err());
    }
}
