//! Command line. The token rule: listening on a loopback address needs no token; any other
//! address needs one (`--token` or LOTTERY_EXPORTER_TOKEN), or the exporter refuses to start.

use clap::Parser;
use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};

pub const MAX_TOKEN: usize = 1024;
pub const MIN_TOKEN: usize = 16;

#[derive(Parser, Debug)]
#[command(
    name = "lottery-exporter",
    version,
    about = "Prometheus metrics and a live status page for redis-lottery campaigns (read-only)"
)]
struct Cli {
    /// Redis URL (redis://[user:password@]host:port[/db]); repeat for several servers.
    #[arg(long = "redis", required = true, value_name = "URL")]
    redis: Vec<String>,
    /// Treat --redis as Redis Cluster seeds and sample every master.
    #[arg(long)]
    cluster: bool,
    /// Address to serve HTTP on (a non-loopback address needs a token).
    #[arg(long, default_value = "127.0.0.1:9477", value_name = "ADDR")]
    listen: String,
    /// A campaign key to report; repeat for several. Default: every campaign found by SCAN.
    #[arg(long = "campaign", value_name = "KEY")]
    campaigns: Vec<OsString>,
    /// Most campaigns discovery reports per node (the rest are counted as dropped).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_campaigns: u64,
    /// Bearer token every request must carry (header or ?token=). Prefer the environment
    /// variable: a command line is visible to other local users.
    #[arg(
        long,
        env = "LOTTERY_EXPORTER_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// Sample Redis every this many ms.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    sample_ms: u64,
    /// Timeout of every Redis connect, read and write, in ms.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    timeout_ms: u64,
}

pub struct Args {
    pub redis: Vec<String>,
    pub cluster: bool,
    pub listen: SocketAddr,
    pub campaigns: Vec<Vec<u8>>,
    pub max_campaigns: usize,
    pub token: Option<String>,
    pub sample_ms: u64,
    pub timeout_ms: u64,
}

pub fn parse() -> Result<Args, String> {
    let c = Cli::parse();
    let addrs: Vec<SocketAddr> = c
        .listen
        .to_socket_addrs()
        .map_err(|e| format!("bad --listen {:?}: {}", c.listen, e))?
        .collect();
    let listen = *addrs
        .first()
        .ok_or_else(|| format!("--listen {:?} resolves to no address", c.listen))?;
    let token = c.token.filter(|t| !t.is_empty());
    if let Some(t) = &token {
        if t.len() < MIN_TOKEN || t.len() > MAX_TOKEN || !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "the token must be {}..={} printable ASCII characters without spaces",
                MIN_TOKEN, MAX_TOKEN
            ));
        }
    }
    if !listen.ip().is_loopback() && token.is_none() {
        return Err(format!(
            "refusing to listen on {} (not a loopback address) without a token: give --token or LOTTERY_EXPORTER_TOKEN",
            listen
        ));
    }
    use std::os::unix::ffi::OsStringExt;
    Ok(Args {
        redis: c.redis,
        cluster: c.cluster,
        listen,
        campaigns: c.campaigns.into_iter().map(|k| k.into_vec()).collect(),
        max_campaigns: usize::try_from(c.max_campaigns).unwrap_or(usize::MAX),
        token,
        sample_ms: c.sample_ms,
        timeout_ms: c.timeout_ms,
    })
}
