//! The subcommands, one module per subcommand or group, and what they share: loading the
//! descriptor, finishing pending transfers first, printing INF.

pub mod codes;
pub mod configure;
pub mod create;
pub mod inspect;
pub mod pause;
pub mod rebalance;
pub mod restock;
pub mod seed;

use std::collections::BTreeMap;

use lottery_cluster::descriptor::{descriptor_key, missing, validate_name, Descriptor};
use lottery_shards::cluster::Cluster;
use lottery_shards::error::{Error, Result};
use lottery_shards::rebalance as transfer;

pub fn name_ok(name: &str) -> Result<()> {
    validate_name(name).map_err(Error::Usage)
}

/// Reads and validates the descriptor (`lottery_cluster::descriptor::Descriptor::parse`): a
/// missing one is a campaign error (exit 3), one that is not as `create` writes it (another
/// campaign's shard key, a key twice, a count that does not fit, ...) a descriptor error
/// (exit 4).
pub fn load(c: &mut Cluster, name: &str) -> Result<Descriptor> {
    match read_descriptor(c, name)? {
        Some(d) => Ok(d),
        None => Err(Error::Campaign(missing(name))),
    }
}

/// [`load`], with `None` for a missing descriptor.
pub fn read_descriptor(c: &mut Cluster, name: &str) -> Result<Option<Descriptor>> {
    name_ok(name)?;
    let key = descriptor_key(name);
    let raw: BTreeMap<String, String> = c.query(redis::cmd("HGETALL").arg(&key))?;
    if raw.is_empty() {
        return Ok(None);
    }
    let fields: Vec<(String, String)> = raw.into_iter().collect();
    Descriptor::parse(name, &fields)
        .map(Some)
        .map_err(|e| Error::Descriptor(format!("invalid descriptor {key}: {e}; nothing was done")))
}

pub fn inf(v: i64) -> String {
    if v < 0 {
        "INF".into()
    } else {
        v.to_string()
    }
}

/// Finishes pending transfers before anything sets stock; a module without LOTTERY.TRANSFER
/// cannot have any.
pub fn recover_first(c: &mut Cluster, d: &Descriptor) -> Result<()> {
    let r = transfer::recover(c, &d.keys, &mut |l| println!("{l}"));
    match r {
        Err(Error::Campaign(m)) if m.contains("unknown command") => Ok(()),
        other => other.map(|_| ()),
    }
}
