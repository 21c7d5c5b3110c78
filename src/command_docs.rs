//! COMMAND DOCS / COMMAND INFO for every lottery command: summary, since, complexity, the
//! argument tree and one key spec (the campaign key, argument 1), set with
//! `RedisModule_SetCommandInfo` (Redis 7.0+). The key spec is the legacy (1,1,1) triple made
//! explicit, with flags saying how the command uses the key (so ACL `%R~`/`%W~` selectors
//! work): COMMAND INFO keeps first key 1, last key 1, step 1. LOTTERY.DEBUG has no key.
//!
//! Setting the info is best effort: if Redis refuses it, a warning is logged and the module
//! still loads with the plain registration.

use redis_module::{raw, Context};
use std::ffi::CStr;
use std::os::raw::c_int;
use std::ptr;

const RO: u64 = raw::REDISMODULE_CMD_KEY_RO as u64;
const RW: u64 = raw::REDISMODULE_CMD_KEY_RW as u64;
const ACCESS: u64 = raw::REDISMODULE_CMD_KEY_ACCESS as u64;
const UPDATE: u64 = raw::REDISMODULE_CMD_KEY_UPDATE as u64;

const OPTIONAL: c_int = raw::REDISMODULE_CMD_ARG_OPTIONAL as c_int;
const MULTIPLE: c_int = raw::REDISMODULE_CMD_ARG_MULTIPLE as c_int;

#[derive(Clone, Copy)]
enum Kind {
    Key,
    Str,
    Int,
    Pure,
    OneOf,
    Block,
}

/// One argument of the documentation tree.
pub struct Arg {
    name: &'static CStr,
    kind: Kind,
    token: Option<&'static CStr>,
    flags: c_int,
    sub: Vec<Arg>,
}

fn arg(name: &'static CStr, kind: Kind) -> Arg {
    Arg {
        name,
        kind,
        token: None,
        flags: 0,
        sub: Vec::new(),
    }
}

fn key() -> Arg {
    arg(c"key", Kind::Key)
}
fn string(name: &'static CStr) -> Arg {
    arg(name, Kind::Str)
}
fn integer(name: &'static CStr) -> Arg {
    arg(name, Kind::Int)
}
fn pure(name: &'static CStr, token: &'static CStr) -> Arg {
    arg(name, Kind::Pure).tok(token)
}
fn oneof(name: &'static CStr, sub: Vec<Arg>) -> Arg {
    Arg {
        sub,
        ..arg(name, Kind::OneOf)
    }
}
fn block(name: &'static CStr, sub: Vec<Arg>) -> Arg {
    Arg {
        sub,
        ..arg(name, Kind::Block)
    }
}
fn user() -> Arg {
    string(c"user")
}

impl Arg {
    fn tok(mut self, t: &'static CStr) -> Arg {
        self.token = Some(t);
        self
    }
    fn opt(mut self) -> Arg {
        self.flags |= OPTIONAL;
        self
    }
    fn multi(mut self) -> Arg {
        self.flags |= MULTIPLE;
        self
    }
}

/// One command's documentation.
pub struct Doc {
    pub name: &'static CStr,
    summary: &'static CStr,
    complexity: &'static CStr,
    /// Key spec flags for argument 1; None: the command takes no key.
    key: Option<u64>,
    args: Vec<Arg>,
}

const SINCE: &CStr = c"1.0.0";

/// Every command's documentation (the names are those registered in `lib.rs`).
pub fn docs() -> Vec<Doc> {
    vec![
        Doc {
            name: c"lottery.configure",
            summary: c"Creates a campaign, or changes its prizes and rules atomically while it runs",
            complexity: c"O(P + N) where P is the number of prizes given and N the number of prizes in the campaign",
            key: Some(RW | UPDATE),
            args: vec![
                key(),
                block(
                    c"prize",
                    vec![string(c"id"), integer(c"weight"), string(c"stock")],
                )
                .tok(c"PRIZE")
                .opt()
                .multi(),
                integer(c"nothing").tok(c"NOTHING").opt(),
                integer(c"cooldown").tok(c"COOLDOWN").opt(),
                string(c"daily").tok(c"DAILY").opt(),
                string(c"maxwins").tok(c"MAXWINS").opt(),
                integer(c"dayoffset").tok(c"DAYOFFSET").opt(),
                block(c"window", vec![integer(c"start-ms"), integer(c"end-ms")])
                    .tok(c"WINDOW")
                    .opt(),
                oneof(
                    c"soldout",
                    vec![
                        pure(c"lose", c"LOSE"),
                        pure(c"redraw", c"REDRAW"),
                        string(c"fallback").tok(c"FALLBACK"),
                    ],
                )
                .tok(c"SOLDOUT")
                .opt(),
                string(c"stream").tok(c"STREAM").opt(),
                integer(c"idempotency").tok(c"IDEMPOTENCY").opt(),
                oneof(
                    c"rate",
                    vec![
                        block(
                            c"limit",
                            vec![
                                integer(c"per-second"),
                                integer(c"burst").tok(c"BURST").opt(),
                            ],
                        ),
                        pure(c"off", c"OFF"),
                    ],
                )
                .tok(c"RATE")
                .opt(),
                oneof(
                    c"admit",
                    vec![
                        block(
                            c"probabilities",
                            vec![string(c"p1"), string(c"p2").opt()],
                        ),
                        pure(c"off", c"OFF"),
                    ],
                )
                .tok(c"ADMIT")
                .opt(),
                oneof(
                    c"clientlimit",
                    vec![
                        block(c"limit", vec![integer(c"n"), integer(c"window-ms")]),
                        pure(c"off", c"OFF"),
                    ],
                )
                .tok(c"CLIENTLIMIT")
                .opt(),
                integer(c"penalty").tok(c"PENALTY").opt(),
                block(
                    c"pace",
                    vec![
                        string(c"prize"),
                        oneof(
                            c"mode",
                            vec![pure(c"linear", c"LINEAR"), pure(c"none", c"NONE")],
                        ),
                    ],
                )
                .tok(c"PACE")
                .opt()
                .multi(),
            ],
        },
        Doc {
            name: c"lottery.draw",
            summary: c"Draws once for a user: WIN, LOSE or the rule that refused the draw (COOLDOWN, QUOTA, BUSY, RETRY, LIMITED, ...)",
            complexity: c"O(1)",
            key: Some(RW | ACCESS | UPDATE),
            args: vec![
                key(),
                user(),
                string(c"request-id").tok(c"REQID").opt(),
                string(c"client-id").tok(c"CLIENT").opt(),
            ],
        },
        Doc {
            name: c"lottery.drain",
            summary: c"Returns the prizes sold since the previous drain and starts a new batch",
            complexity: c"O(N) where N is the number of prizes",
            key: Some(RW | ACCESS | UPDATE),
            args: vec![key(), pure(c"last", c"LAST").opt()],
        },
        Doc {
            name: c"lottery.grant",
            summary: c"Gives a user bonus chances, optionally capped",
            complexity: c"O(1)",
            key: Some(RW | ACCESS | UPDATE),
            args: vec![
                key(),
                user(),
                integer(c"n"),
                integer(c"cap").tok(c"CAP").opt(),
            ],
        },
        Doc {
            name: c"lottery.restock",
            summary: c"Adds to (or takes from) a prize's remaining stock",
            complexity: c"O(N) where N is the number of prizes",
            key: Some(RW | ACCESS | UPDATE),
            args: vec![key(), string(c"prize"), integer(c"delta")],
        },
        Doc {
            name: c"lottery.pause",
            summary: c"Pauses a campaign: every draw gets PAUSED until LOTTERY.RESUME",
            complexity: c"O(1)",
            key: Some(RW | UPDATE),
            args: vec![key()],
        },
        Doc {
            name: c"lottery.resume",
            summary: c"Resumes a paused campaign",
            complexity: c"O(1)",
            key: Some(RW | UPDATE),
            args: vec![key()],
        },
        Doc {
            name: c"lottery.ban",
            summary: c"Bans a user (or, with CLIENT, a client id) from drawing for some milliseconds",
            complexity: c"O(1)",
            key: Some(RW | UPDATE),
            args: vec![
                key(),
                oneof(
                    c"who",
                    vec![user(), string(c"client-id").tok(c"CLIENT")],
                ),
                integer(c"ms"),
            ],
        },
        Doc {
            name: c"lottery.unban",
            summary: c"Lifts a user's ban, or (with CLIENT) a client's penalty",
            complexity: c"O(1)",
            key: Some(RW | ACCESS | UPDATE),
            args: vec![
                key(),
                oneof(
                    c"who",
                    vec![user(), string(c"client-id").tok(c"CLIENT")],
                ),
            ],
        },
        Doc {
            name: c"lottery.user",
            summary: c"Returns a user's state in a campaign",
            complexity: c"O(1)",
            key: Some(RO | ACCESS),
            args: vec![key(), user()],
        },
        Doc {
            name: c"lottery.stats",
            summary: c"Returns a campaign's rules, counters and prizes",
            complexity: c"O(N) where N is the number of prizes",
            key: Some(RO | ACCESS),
            args: vec![key()],
        },
        Doc {
            name: c"lottery.transfer",
            summary: c"Moves stock between the shards of a sharded campaign, one idempotent step per shard",
            complexity: c"O(N) where N is the number of prizes; LIST: O(T) where T is the number of transfer records",
            key: Some(RW | ACCESS | UPDATE),
            args: vec![
                key(),
                oneof(
                    c"step",
                    vec![
                        block(
                            c"out",
                            vec![
                                string(c"id"),
                                string(c"prize"),
                                integer(c"count"),
                                string(c"peer"),
                            ],
                        )
                        .tok(c"OUT"),
                        block(
                            c"in",
                            vec![
                                string(c"id"),
                                string(c"prize"),
                                integer(c"count"),
                                string(c"peer"),
                            ],
                        )
                        .tok(c"IN"),
                        block(c"settle", vec![string(c"id")]).tok(c"SETTLE"),
                        block(c"list", vec![pure(c"pending", c"PENDING").opt()]).tok(c"LIST"),
                    ],
                ),
            ],
        },
        Doc {
            name: c"lottery.debug",
            summary: c"Test only (load option debug-clock yes): pins the module clock or returns to the real clock; PANIC shows the panic guard",
            complexity: c"O(1)",
            key: None,
            args: vec![oneof(
                c"subcommand",
                vec![
                    block(
                        c"clock",
                        vec![oneof(
                            c"time",
                            vec![integer(c"ms"), pure(c"real", c"REAL")],
                        )],
                    )
                    .tok(c"CLOCK"),
                    pure(c"panic", c"PANIC"),
                ],
            )],
        },
        Doc {
            name: c"lottery.apply",
            summary: c"Internal: applies a write's effects on a replica or from the AOF; refused from clients",
            complexity: c"O(N) where N is the size of the effect",
            key: Some(RW | UPDATE),
            args: vec![key(), string(c"blob")],
        },
    ]
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
                    c_args(&a.sub)
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

/// Sets the info of every command. Never fails the load: a refusal is logged.
pub fn register(ctx: &Context) {
    let (Some(get), Some(set)) = (unsafe { raw::RedisModule_GetCommand }, unsafe {
        raw::RedisModule_SetCommandInfo
    }) else {
        crate::entry::log(
            ctx.ctx,
            crate::entry::Level::Warning,
            "lottery: this Redis has no RedisModule_SetCommandInfo: COMMAND DOCS stays empty",
        );
        return;
    };
    for d in docs() {
        let name = d.name.to_string_lossy();
        let cmd = unsafe { get(ctx.ctx, d.name.as_ptr()) };
        if cmd.is_null() {
            crate::entry::log(
                ctx.ctx,
                crate::entry::Level::Warning,
                &format!("lottery: command {name} not found: no COMMAND DOCS for it"),
            );
            continue;
        }
        let info = raw::RedisModuleCommandInfo {
            version: &VERSION,
            summary: d.summary.as_ptr(),
            complexity: d.complexity.as_ptr(),
            since: SINCE.as_ptr(),
            history: ptr::null_mut(),
            tips: ptr::null(),
            arity: 0, // keep the registered arity: the commands check their own
            key_specs: d.key.map_or(ptr::null_mut(), c_key_specs),
            args: c_args(&d.args),
        };
        if unsafe { set(cmd, &info) } != raw::REDISMODULE_OK as c_int {
            crate::entry::log(ctx.ctx, crate::entry::Level::Warning, &format!(
                "lottery: Redis refused the COMMAND DOCS/key spec of {name}; it keeps its plain registration"
            ));
        }
    }
}
