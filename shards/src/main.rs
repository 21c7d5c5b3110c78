//! lottery-shards: the command line. See shards/README.md.
//!
//! `args`: the subcommands and their checks; `commands`: one module per subcommand or group.
//! The work itself (topology, descriptor, stats, transfers, lease) is in the library and in the
//! `lottery-cluster` crate.

mod args;
mod commands;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;
use lottery_shards::cluster::Cluster;
use lottery_shards::error::{Error, Result, SIGNAL_EXIT_BASE};

use args::{Cli, Cmd, CodesCmd};
use commands::{codes, configure, create, inspect, pause, rebalance, restock, seed};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("lottery-shards: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

/// SIGTERM/SIGINT: the first sets `stop` (a `rebalance` stops between transfers and releases
/// its lease; every other command finishes its bounded work, so `restock` never leaves
/// shards changed without the descriptor); a second one exits at once with 128 + the signal
/// (a transfer step in progress is left to the next run's recovery; all are idempotent).
fn signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        // The shutdown first: it must see the flag before this signal sets it.
        signal_hook::flag::register_conditional_shutdown(
            sig,
            SIGNAL_EXIT_BASE + sig,
            Arc::clone(&stop),
        )
        .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
        .map_err(|e| Error::Usage(format!("cannot handle signals: {e}")))?;
    }
    Ok(stop)
}

fn run(cli: Cli) -> Result<u8> {
    let seeds = args::seeds(&cli.cluster)?;
    args::check(&cli.cmd)?;
    let stop = signals()?;
    let mut c = Cluster::connect(&seeds)?;
    match cli.cmd {
        Cmd::Create {
            name,
            shards,
            options,
        } => create::create(&mut c, &name, shards, &options),
        Cmd::Describe { name } => inspect::describe(&mut c, &name),
        Cmd::Route { name, user } => inspect::route(&mut c, &name, &user),
        Cmd::Stats { name, json } => inspect::show_stats(&mut c, &name, json),
        Cmd::Configure {
            name,
            options,
            force,
        } => configure::with_tool_lease(&mut c, &name, "configure", force, |c, l| {
            configure::configure(c, &name, &options, l)
        }),
        Cmd::Restock {
            name,
            prize,
            delta,
            force,
        } => configure::with_tool_lease(&mut c, &name, "restock", force, |c, l| {
            restock::restock(c, &name, &prize, &delta, l)
        }),
        Cmd::Pause { name } => pause::pause(&mut c, &name, "LOTTERY.PAUSE", "paused"),
        Cmd::Resume { name } => pause::pause(&mut c, &name, "LOTTERY.RESUME", "resumed"),
        Cmd::Rebalance {
            name,
            every_ms,
            min_move,
            crash_after,
            lease_ms,
        } => rebalance::rebalance_cmd(
            &mut c,
            &name,
            rebalance::RebalanceArgs {
                every_ms,
                min_move,
                crash_after,
                lease_ms,
            },
            stop,
        ),
        Cmd::Check { name, json } => inspect::check(&mut c, &name, json),
        Cmd::Codes {
            cmd:
                CodesCmd::Add {
                    name,
                    prize,
                    file,
                    batch,
                    force,
                },
        } => configure::with_tool_lease(&mut c, &name, "codes", force, |c, l| {
            codes::add(c, &name, &prize, &file, batch, l)
        }),
        Cmd::Codes {
            cmd: CodesCmd::Count { name, prize },
        } => codes::count(&mut c, &name, &prize),
        Cmd::Seed { name, action, json } => seed::seed(&mut c, &name, action, json),
    }
}
