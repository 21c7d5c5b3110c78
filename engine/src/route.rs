//! Routing a user to one shard of a sharded campaign (filled in by the sharding work).
