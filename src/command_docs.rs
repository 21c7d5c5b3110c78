//! The command descriptions' machinery: each command file holds one static `Command` (name,
//! entry point, flags, key, arity, summary, complexity, argument tree); from the list of them
//! (`commands::ALL`) the module registers the commands, sets their COMMAND DOCS / COMMAND INFO
//! with `RedisModule_SetCommandInfo` (Redis 7.0+), and renders the table of docs/commands.md.
//!
//! The key spec is the legacy (1,1,1) triple made explicit, with flags saying how the command
//! uses the key (so ACL `%R~`/`%W~` selectors work): COMMAND INFO keeps first key 1, last key 1,
//! step 1. A command without a key (LOTTERY.DEBUG) registers (0,0,0). The registered arity
//! stays -1 (COMMAND INFO): the commands check their own, with the errors documented for each;
//! `Command::arity` documents it with Redis's convention (N: exactly N words, -N: at least N).
//!
//! Setting the info is best effort: if Redis refuses it, a warning is logged and the module
//! still loads with the plain registration.

use crate::entry::CommandFn;
use crate::ffi::server::{self, InfoError};
use redis_module::{raw, Context};
use std::ffi::CStr;
use std::fmt;
use std::os::raw::c_int;
use std::ptr;

/// Key spec flags (combine with `|`).
pub const RO: u64 = raw::REDISMODULE_CMD_KEY_RO as u64;
pub const RW: u64 = raw::REDISMODULE_CMD_KEY_RW as u64;
pub const ACCESS: u64 = raw::REDISMODULE_CMD_KEY_ACCESS as u64;
pub const UPDATE: u64 = raw::REDISMODULE_CMD_KEY_UPDATE as u64;

/// The key spec flags' names, as COMMAND INFO shows them.
#[cfg(test)]
const KEY_FLAG_NAMES: [(u64, &str); 4] = [
    (RO, "RO"),
    (RW, "RW"),
    (ACCESS, "access"),
    (UPDATE, "update"),
];

const OPTIONAL: c_int = raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int;
const MULTIPLE: c_int = raw::REDISMODULE_CMD_ARG_MULTIPLE as c_int;

const SINCE: &CStr = c"1.0.0";

#[derive(Clone, Copy)]
enum Kind {
    Key,
    Str,
    Int,
    Pure,
    OneOf,
    Block,
}

/// One argument of the documentation tree, built in constant expressions:
/// `Arg::integer(c"cap").tok(c"CAP").opt()`.
pub struct Arg {
    name: &'static CStr,
    kind: Kind,
    token: Option<&'static CStr>,
    flags: c_int,
    sub: &'static [Arg],
}

impl Arg {
    const fn new(name: &'static CStr, kind: Kind) -> Arg {
        Arg {
            name,
            kind,
            token: None,
            flags: 0,
            sub: &[],
        }
    }
    /// The campaign key (the command's key spec 0).
    pub const fn key() -> Arg {
        Arg::new(c"key", Kind::Key)
    }
    pub const fn string(name: &'static CStr) -> Arg {
        Arg::new(name, Kind::Str)
    }
    pub const fn integer(name: &'static CStr) -> Arg {
        Arg::new(name, Kind::Int)
    }
    /// A keyword alone.
    pub const fn pure(name: &'static CStr, token: &'static CStr) -> Arg {
        Arg::new(name, Kind::Pure).tok(token)
    }
    pub const fn oneof(name: &'static CStr, sub: &'static [Arg]) -> Arg {
        Arg {
            sub,
            ..Arg::new(name, Kind::OneOf)
        }
    }
    pub const fn block(name: &'static CStr, sub: &'static [Arg]) -> Arg {
        Arg {
            sub,
            ..Arg::new(name, Kind::Block)
        }
    }
    /// Preceded by a keyword.
    pub const fn tok(mut self, t: &'static CStr) -> Arg {
        self.token = Some(t);
        self
    }
    pub const fn opt(mut self) -> Arg {
        self.flags |= OPTIONAL;
        self
    }
    pub const fn multi(mut self) -> Arg {
        self.flags |= MULTIPLE;
        self
    }

    #[cfg(test)]
    /// The argument in a syntax line: `[TOKEN name]`, `<a | b>`, `[PRIZE id weight stock]...`.
    fn syntax(&self) -> String {
        let s = |c: &CStr| c.to_string_lossy().into_owned();
        let body = match self.kind {
            Kind::Pure => String::new(),
            Kind::Key | Kind::Str | Kind::Int => s(self.name),
            Kind::Block => words(self.sub),
            Kind::OneOf => {
                let alts: Vec<String> = self.sub.iter().map(Arg::syntax).collect();
                let alts = alts.join(" | ");
                if self.token.is_some() || self.flags & OPTIONAL != 0 {
                    alts
                } else {
                    format!("<{alts}>")
                }
            }
        };
        let mut t = match (self.token, body.is_empty()) {
            (Some(tok), true) => s(tok),
            (Some(tok), false) => format!("{} {body}", s(tok)),
            (None, _) => body,
        };
        if self.flags & OPTIONAL != 0 {
            t = format!("[{t}]");
        }
        if self.flags & MULTIPLE != 0 {
            t.push_str("...");
        }
        t
    }
}

#[cfg(test)]
fn words(args: &[Arg]) -> String {
    args.iter().map(Arg::syntax).collect::<Vec<_>>().join(" ")
}

/// One command: everything Redis, COMMAND DOCS and docs/commands.md know of it.
pub struct Command {
    /// The registered name, lower case (`lottery.x`).
    pub name: &'static CStr,
    pub entry: CommandFn,
    /// `RedisModule_CreateCommand` flags (`write deny-oom fast`).
    pub flags: &'static CStr,
    /// Key spec flags of the campaign key, argument 1; None: the command takes no key.
    pub key: Option<u64>,
    /// Redis's convention: N words exactly, -N at least N (the command name included). Shown
    /// in docs/commands.md; Redis keeps -1 (the command checks its own).
    #[cfg_attr(not(test), allow(dead_code))]
    pub arity: i32,
    pub summary: &'static CStr,
    pub complexity: &'static CStr,
    pub args: &'static [Arg],
}

/// A command's name in upper case (`LOTTERY.X`), written only when displayed.
pub struct Upper(&'static CStr);

impl fmt::Display for Upper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0.to_bytes() {
            fmt::Write::write_char(f, char::from(b.to_ascii_uppercase()))?;
        }
        Ok(())
    }
}

impl Command {
    /// The name as errors and logs show it (`LOTTERY.X`).
    pub fn upper(&self) -> Upper {
        Upper(self.name)
    }

    /// The legacy key positions: first key, last key, step.
    pub fn key_positions(&self) -> (c_int, c_int, c_int) {
        if self.key.is_some() {
            (1, 1, 1)
        } else {
            (0, 0, 0)
        }
    }

    #[cfg(test)]
    /// The arguments as one syntax line (`key user [REQID request-id] [CLIENT client-id]`).
    pub fn syntax(&self) -> String {
        words(self.args)
    }

    #[cfg(test)]
    /// The key spec flags' names (`RW access update`), or `-` without a key.
    pub fn key_flag_names(&self) -> String {
        match self.key {
            None => "-".into(),
            Some(k) => KEY_FLAG_NAMES
                .iter()
                .filter(|(bit, _)| k & bit != 0)
                .map(|(_, name)| *name)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

#[cfg(test)]
/// The markdown table of docs/commands.md (between its `commands:begin`/`end` markers),
/// generated and checked by the `docs_table_is_current` test.
pub fn markdown_table(commands: &[&Command]) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let mut t = String::from(
        "| command | arguments | arity | flags | key | complexity | summary |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for c in commands {
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            c.upper(),
            cell(&c.syntax()),
            c.arity,
            c.flags.to_string_lossy(),
            c.key_flag_names(),
            cell(&c.complexity.to_string_lossy()),
            cell(&c.summary.to_string_lossy()),
        ));
    }
    t
}

fn zeroed_arg() -> raw::RedisModuleCommandArg {
    raw::RedisModuleCommandArg {
        name: ptr::null(),
        type_: 0,
        key_spec_index: -1,
        token: ptr::null(),
        summary: ptr::null(),
        since: ptr::null(),
        flags: 0,
        deprecated_since: ptr::null(),
        subargs: ptr::null_mut(),
        display_text: ptr::null(),
    }
}

/// A NULL-terminated C array of `args`, leaked: Redis keeps pointers into it for the life of
/// the process (a module with a data type cannot be unloaded).
fn c_args(args: &[Arg]) -> *mut raw::RedisModuleCommandArg {
    let mut v: Vec<raw::RedisModuleCommandArg> = args
        .iter()
        .map(|a| {
            let type_ = match a.kind {
                Kind::Key => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY,
                Kind::Str => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
                Kind::Int => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
                Kind::Pure => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN,
                Kind::OneOf => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF,
                Kind::Block => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
            };
            raw::RedisModuleCommandArg {
                name: a.name.as_ptr(),
                type_,
                key_spec_index: if matches!(a.kind, Kind::Key) { 0 } else { -1 },
                token: a.token.map_or(ptr::null(), CStr::as_ptr),
                flags: a.flags,
                subargs: if a.sub.is_empty() {
                    ptr::null_mut()
                } else {
                    c_args(a.sub)
                },
                ..zeroed_arg()
            }
        })
        .collect();
    v.push(zeroed_arg());
    Box::leak(v.into_boxed_slice()).as_mut_ptr()
}

/// The key spec array for argument 1 (NULL-terminated), leaked like the arguments.
fn c_key_specs(flags: u64) -> *mut raw::RedisModuleCommandKeySpec {
    let spec = |bs_type, fk_type, flags| raw::RedisModuleCommandKeySpec {
        notes: ptr::null(),
        flags,
        begin_search_type: bs_type,
        bs: raw::RedisModuleCommandKeySpec__bindgen_ty_1 {
            index: raw::RedisModuleCommandKeySpec__bindgen_ty_1__bindgen_ty_1 { pos: 1 },
        },
        find_keys_type: fk_type,
        fk: raw::RedisModuleCommandKeySpec__bindgen_ty_2 {
            range: raw::RedisModuleCommandKeySpec__bindgen_ty_2__bindgen_ty_1 {
                lastkey: 0,
                keystep: 1,
                limit: 0,
            },
        },
    };
    let v = vec![
        spec(
            raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INDEX,
            raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_RANGE,
            flags,
        ),
        spec(
            raw::RedisModuleKeySpecBeginSearchType_REDISMODULE_KSPEC_BS_INVALID,
            raw::RedisModuleKeySpecFindKeysType_REDISMODULE_KSPEC_FK_OMITTED,
            0,
        ),
    ];
    Box::leak(v.into_boxed_slice()).as_mut_ptr()
}

static VERSION: raw::RedisModuleCommandInfoVersion = raw::RedisModuleCommandInfoVersion {
    version: 1,
    sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
    sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
    sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
};

/// Sets the info of every command (registered before). Never fails the load: a refusal is
/// logged.
pub fn register(ctx: &Context) {
    let warn = |msg: &str| crate::entry::log(ctx.ctx, crate::entry::Level::Warning, msg);
    for &d in crate::commands::ALL.iter() {
        let name = d.name.to_string_lossy();
        let info = raw::RedisModuleCommandInfo {
            version: &VERSION,
            summary: d.summary.as_ptr(),
            complexity: d.complexity.as_ptr(),
            since: SINCE.as_ptr(),
            history: ptr::null_mut(),
            tips: ptr::null(),
            arity: 0, // keep the registered arity: the commands check their own
            key_specs: d.key.map_or(ptr::null_mut(), c_key_specs),
            args: c_args(d.args),
        };
        match server::set_command_info(ctx, d.name, &info) {
            Ok(()) => {}
            Err(InfoError::NoApi) => {
                warn("lottery: this Redis has no RedisModule_SetCommandInfo: COMMAND DOCS stays empty");
                return;
            }
            Err(InfoError::NotFound) => warn(&format!(
                "lottery: command {name} not found: no COMMAND DOCS for it"
            )),
            Err(InfoError::Refused) => warn(&format!(
                "lottery: Redis refused the COMMAND DOCS/key spec of {name}; it keeps its plain registration"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::markdown_table;

    const BEGIN: &str = "<!-- commands:begin -->\n";
    const END: &str = "<!-- commands:end -->";

    /// docs/commands.md's table is the one the descriptions make. To regenerate it:
    /// `UPDATE_DOCS=1 cargo test -p redis-lottery --lib docs_table`.
    #[test]
    fn docs_table_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/commands.md");
        let text = std::fs::read_to_string(path).unwrap();
        let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
            panic!("docs/commands.md has no {BEGIN:?} ... {END:?} section");
        };
        let current = &text[b + BEGIN.len()..e];
        let table = markdown_table(&crate::commands::ALL);
        println!("{table}");
        if current != table {
            if std::env::var_os("UPDATE_DOCS").is_some() {
                let new = format!("{}{table}{}", &text[..b + BEGIN.len()], &text[e..]);
                std::fs::write(path, new).unwrap();
            } else {
                panic!(
                    "docs/commands.md's command table is stale: \
                     UPDATE_DOCS=1 cargo test -p redis-lottery --lib docs_table"
                );
            }
        }
    }
}
