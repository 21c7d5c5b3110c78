//! Cluster glue: the one case where a draw must look at the slot's migration state.
//!
//! A campaign declares one key (its own), but a win also writes its wins stream, which lives in
//! the same slot. While that slot is being migrated, the two keys can be on different nodes for
//! a moment (`MIGRATE` of one key, then of the other). A win appended then would create a
//! second stream on the wrong node, and the next MIGRATE of the stream would fail with
//! BUSYKEY or, with REPLACE, drop entries. So a win whose stream is missing while the campaign
//! has sold before, on a node where the slot is MIGRATING or IMPORTING, is refused with
//! `TRYAGAIN` (the error Redis itself gives multi-key commands during a migration), and the
//! client retries once the slot has moved. Only that rare path pays for the CLUSTER NODES call.
//!
//! Valkey 9's atomic slot migration (`CLUSTER MIGRATESLOTS`, declared in `crate::compat`) needs
//! no guard: the slot's keys travel in one snapshot plus the stream of later writes, invisible
//! on the target until it takes the whole slot at once, so the two keys are never split and no
//! `[slot->-` marker appears.

use crate::engine::keyslot;
use redis_module::{Context, RedisValue};

/// True when this node reports `slot` as migrating to or importing from another node.
pub fn slot_in_migration(ctx: &Context, key: &[u8]) -> bool {
    let slot = keyslot::key_slot(key);
    let text = match ctx.call("CLUSTER", &["NODES"]) {
        Ok(RedisValue::SimpleString(s)) | Ok(RedisValue::BulkString(s)) => s,
        Ok(RedisValue::StringBuffer(b)) | Ok(RedisValue::VerbatimString((_, b))) => {
            String::from_utf8_lossy(&b).into_owned()
        }
        Ok(RedisValue::BulkRedisString(s)) => s.to_string_lossy(),
        // Cannot tell: refuse the win rather than risk splitting the stream.
        _ => return true,
    };
    migrating_in(&text, slot)
}

/// Whether the `myself` line of a CLUSTER NODES text lists `slot` as `[slot->-id]`
/// (migrating) or `[slot-<-id]` (importing).
fn migrating_in(nodes: &str, slot: u16) -> bool {
    let out = format!("[{slot}->-");
    let imp = format!("[{slot}-<-");
    nodes
        .lines()
        .filter(|l| l.split(' ').nth(2).is_some_and(|f| f.contains("myself")))
        .any(|l| {
            l.split(' ')
                .any(|t| t.starts_with(&out) || t.starts_with(&imp))
        })
}

#[cfg(test)]
mod tests {
    use super::migrating_in;

    #[test]
    fn reads_the_myself_line_only() {
        let nodes = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460 [42->-b2]
b2 127.0.0.1:7002@17002 master - 0 1 2 connected 5461-10922 [43-<-a1]
";
        assert!(migrating_in(nodes, 42));
        assert!(
            !migrating_in(nodes, 43),
            "another node's import is not ours"
        );
        assert!(!migrating_in(nodes, 4), "a prefix of another slot number");
        let importing = "a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected [7-<-b2]\n";
        assert!(migrating_in(importing, 7));
        assert!(!migrating_in("", 7));
    }
}
