//! Every call into the module API that the SDK does not wrap safely, behind safe functions.
//! Nothing outside this module (and `crate::entry`, the boundary with its `extern "C"` entry
//! points, replies and logs) writes `unsafe`.
//!
//! - `string`: Redis strings: arguments borrowed for a call (`Str`), strings we own.
//! - `key`: an open key (`Key<'ctx>`), and the campaign stored in it, borrowed from the handle.
//! - `server`: the context: clock, flags, replication, keyspace events, ACL, module options,
//!   command info.
//! - `io`: what the data type callbacks get from Redis (RDB key names, AOF, digests).
//! - `datatype`: the data type's callbacks themselves, and the RDB handles they wrap.
//! - `info`: the INFO callback's fields.
//! - `events`: server events (the event loop's "before sleep" point).

pub mod datatype;
pub mod events;
pub mod info;
pub mod io;
pub mod key;
pub mod server;
pub mod string;

pub use key::{Appended, Key, KeyError};
pub use string::{KeptSet, KeptString, OwnedString, Str};
