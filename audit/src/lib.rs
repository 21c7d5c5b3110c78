//! lottery-audit's library: the binary's checks, also used by its tests.
//!
//! Layout: `construction`: the words, "uniform below n", the table pick (written from the
//! specification, not the module's code); `entry`: entries, limits, the text form; `source`:
//! reading the stream or the database; `check`: the checks (`table`: a table entry, one draw against it); `report`: text and JSON.

pub mod check;
pub mod construction;
pub mod entry;
pub mod report;
pub mod source;
pub mod table;
