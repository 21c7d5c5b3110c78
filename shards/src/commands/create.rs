//! `create`: places the shards, configures each, then writes the descriptor.

use std::time::{SystemTime, UNIX_EPOCH};

use lottery_cluster::configure::{ConfigureOptions, Given};
use lottery_cluster::descriptor::{descriptor_key, place_shards, Descriptor, Stock};
use lottery_cluster::keyslot::default_stream;
use lottery_shards::cluster::Cluster;
use lottery_shards::error::{Error, Result};

const CREATE_DESCRIPTOR: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end \
     redis.call('HSET', KEYS[1], unpack(ARGV)) return 1";

pub fn create(c: &mut Cluster, name: &str, n: u32, options: &[String]) -> Result<u8> {
    let opts = ConfigureOptions::parse(options).map_err(Error::Usage)?;
    let dkey = descriptor_key(name);
    if c.query::<i64>(redis::cmd("EXISTS").arg(&dkey))? == 1 {
        return Err(Error::Campaign(format!(
            "sharded campaign '{name}' exists already ({dkey})"
        )));
    }
    let topo = c.topology.clone();
    let keys = place_shards(name, n, topo.masters.len(), |s| topo.owner_of_slot(s))
        .map_err(Error::Cluster)?;
    for key in &keys {
        let stream = String::from_utf8_lossy(&default_stream(key.as_bytes())).into_owned();
        for k in [key, &stream] {
            if c.query::<i64>(redis::cmd("EXISTS").arg(k))? == 1 {
                return Err(Error::Campaign(format!(
                    "key {k} exists already (left over from an earlier campaign?): delete it \
                     or use another name"
                )));
            }
        }
    }
    for (i, key) in keys.iter().enumerate() {
        let mut cmd = redis::cmd("LOTTERY.CONFIGURE");
        cmd.arg(key).arg(opts.for_shard(i as u32, n));
        if let Err(e) = c.query::<()>(&cmd) {
            // Fresh keys of ours: take back the shards made so far.
            for k in &keys[..i] {
                let stream = String::from_utf8_lossy(&default_stream(k.as_bytes())).into_owned();
                let _ = c.query::<i64>(redis::cmd("DEL").arg(k));
                let _ = c.query::<i64>(redis::cmd("DEL").arg(&stream));
            }
            return Err(e.context(format!(
                "configuring shard {i} ({key}); nothing was created"
            )));
        }
    }
    let d = Descriptor {
        name: name.to_string(),
        shards: n,
        keys: keys.clone(),
        // A code prize starts with no codes: `codes add` puts them in (and counts them here).
        stock: opts
            .prizes()
            .map(|(p, g)| {
                let s = match g {
                    Given::Stock(s) => s,
                    Given::Codes => Stock::Finite(0),
                };
                (p.to_string(), s)
            })
            .collect(),
        created_ms: now_ms(),
    };
    let args: Vec<String> = d.fields().into_iter().flat_map(|(k, v)| [k, v]).collect();
    let mut eval = redis::cmd("EVAL");
    eval.arg(CREATE_DESCRIPTOR).arg(1).arg(&dkey).arg(&args);
    if c.query_once::<i64>(&dkey, &eval)? == 0 {
        return Err(Error::Campaign(format!(
            "sharded campaign '{name}' was created meanwhile by someone else ({dkey})"
        )));
    }
    for (i, key) in keys.iter().enumerate() {
        println!("shard {i} {key} {}", c.topology.node_of_key(key));
    }
    Ok(0)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
