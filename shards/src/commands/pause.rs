//! `pause` and `resume`: the same command on every shard.

use lottery_shards::cluster::Cluster;
use lottery_shards::error::{shard_error, Result};

use super::load;

pub fn pause(c: &mut Cluster, name: &str, command: &str, done: &str) -> Result<u8> {
    let d = load(c, name)?;
    for (i, key) in d.keys.iter().enumerate() {
        c.query::<()>(redis::cmd(command).arg(key))
            .map_err(|e| shard_error(e, key).context(format!("shard {i} ({key})")))?;
        println!("{done} shard {i} {key}");
    }
    Ok(0)
}
