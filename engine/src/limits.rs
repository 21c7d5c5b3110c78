//! Limits a campaign keeps to, shared by the argument parser, CONFIGURE and the decoders (so
//! whatever is saved loads).

use super::keyslot;

pub const MAX_PRIZES: usize = 65_536;
/// Distinct prize ids a campaign may use over its life (every one is kept, interned, so a
/// user's last prize stays nameable): four full tables. CONFIGURE refuses a table that would
/// go past it and the loader refuses a record that does, so whatever is saved loads. It also
/// bounds the retired prizes and a DRAIN batch (each is a name). With `MAX_TIER_WEIGHTS` and
/// the GUARANTEE list (at most `MAX_PRIZES` ids) it bounds the meta record a save, a DUMP and
/// an AOF rewrite write: under 250 MB even with every id at `MAX_ID_LEN`, so a DUMP stays
/// under Redis's 512 MB bulk limit and RESTORE or MIGRATE takes it.
pub const MAX_NAMES: usize = 4 * MAX_PRIZES;
/// The most prizes a VERIFIABLE campaign with SOLDOUT REDRAW may have. Under REDRAW a prize
/// that cannot be won weighs 0 in the table, so each sell-out, restock and PACE flip changes
/// the table in force, and the next draw publishes the whole table again (one `table` entry
/// of a pair per prize, per tier used). Without a bound, selling out a 65,536-prize table
/// would append some 65,536 entries of 65,536 pairs each (about 0.5 MB and 14 ms a publishing
/// draw: quadratic stream growth), and a paced prize flipping at each of its sales would make
/// every draw publish one. With 1,024 prizes a publishing draw appends about 7 KB (short ids;
/// at most about 270 KB with every id at `MAX_ID_LEN`) and takes under 0.5 ms. CONFIGURE
/// refuses more; the loader does not (a saved campaign loads whatever its table).
pub const MAX_VERIFIABLE_REDRAW_PRIZES: usize = 1024;
pub const MAX_ID_LEN: usize = 256;
pub const MAX_REQID_LEN: usize = 128;
/// The longest campaign key CONFIGURE creates and COPY copies to, and the longest STREAM key.
pub const MAX_KEY_LEN: usize = 4096;
/// The longest wins stream name a campaign can hold, so the longest the loader accepts: an
/// explicit STREAM key, or the default stream of the longest campaign key.
pub const MAX_STREAM_KEY_LEN: usize = MAX_KEY_LEN + keyslot::DEFAULT_STREAM_EXTRA;
pub const MAX_IDEMPOTENCY_MS: u64 = 86_400_000;
pub const MAX_DAYOFFSET_MIN: i32 = 1440;
/// The longest GUARANTEE: a guaranteed draw every million draws at most.
pub const MAX_GUARANTEE: u32 = 1_000_000;
/// Tiers a campaign may define (each is an alias table as large as the prize table).
pub const MAX_TIERS: usize = 32;
/// PRIZE-WEIGHT entries over all of a campaign's tiers: four full tables (each entry is a
/// prize id in the meta record; see `MAX_NAMES`).
pub const MAX_TIER_WEIGHTS: usize = 4 * MAX_PRIZES;
pub const MAX_TIER_NAME_LEN: usize = 64;
/// Codes one LOTTERY.CODES ADD or REMOVE may name (the command's effect carries them all).
pub const MAX_CODES_PER_CALL: usize = 100_000;
/// The longest code a code prize's pool holds (`LOTTERY.CODES ... ADD`).
pub const MAX_CODE_LEN: usize = 512;
/// The most codes one prize's pool may ever hold, unused plus handed out (a handed-out code is
/// remembered for good, so adding it again is refused): 2^31 - 1. Every count of a pool then
/// fits a signed 32-bit integer, whatever a client or an encoding reads it into, and stays far
/// from overflow in any sum. It never limits a real pool: the pool's index alone takes about
/// 30 bytes a code, so 2^31 codes would need some 64 GB before their bytes.
pub const MAX_CODES: u64 = (1 << 31) - 1;
/// The largest epoch number of a VERIFIABLE campaign (`LOTTERY.SEED ROTATE` refuses to start
/// another, and so does a draw that would replace a revealed seed): STATS replies it as a
/// signed 64-bit integer, and an epoch number must never repeat. The loader refuses a larger
/// one, so whatever is saved loads. No campaign gets near it by rotating.
pub const MAX_EPOCH: u64 = i64::MAX as u64;
