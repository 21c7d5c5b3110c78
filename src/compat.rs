//! What differs between the servers the module runs on (Redis 7.0 to 8.x, Valkey 8 and 9),
//! found at load time and never assumed: the module API functions a server lacks are None in
//! the SDK's table (every caller in `crate::ffi` checks), and a module option is set only where
//! the server both is the one that defines it and lists it among its options.
//!
//! - Valkey 9's atomic slot migration (`CLUSTER MIGRATESLOTS`) is refused on every slot of a
//!   node while any loaded module has not declared that it handles it. The module handles it
//!   (see docs/compatibility.md): the campaign travels in the migration's snapshot as its AOF
//!   rewrite (`LOTTERY.APPLY`), its wins stream with it, and the slot changes owner atomically.
//!   The option's bit is Valkey's: Redis gives other meanings to the bits it adds, so it is set
//!   only on Valkey 9+ where `GetModuleOptionsAll` includes it.
//! - The other differences (ACL categories, defrag callbacks, COMMAND DOCS, key permission
//!   checks) are used only through `crate::ffi`, which checks each function pointer; the load
//!   log lists what this server has.

use crate::ffi::server;
use redis_module::{Context, RedisValue};

/// Valkey 9's `VALKEYMODULE_OPTIONS_HANDLE_ATOMIC_SLOT_MIGRATION` (1 << 5).
pub const VALKEY_OPTIONS_HANDLE_ATOMIC_SLOT_MIGRATION: u32 = 1 << 5;

/// The server as `INFO server` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerId {
    /// `valkey` or `redis`.
    pub name: String,
    pub version: (u32, u32, u32),
}

impl ServerId {
    pub fn is_valkey(&self) -> bool {
        self.name == "valkey"
    }

    pub fn describe(&self) -> String {
        let (a, b, c) = self.version;
        format!("{} {a}.{b}.{c}", self.name)
    }
}

fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.trim().split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// Reads an `INFO server` text. Valkey says `server_name:valkey` and `valkey_version:`
/// (its `redis_version:` stays 7.2.4 for clients that check it); Redis has neither.
pub fn parse_server_info(text: &str) -> Option<ServerId> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    if field("server_name") == Some("valkey") {
        if let Some(v) = field("valkey_version").and_then(parse_version) {
            return Some(ServerId {
                name: "valkey".into(),
                version: v,
            });
        }
    }
    field("redis_version")
        .and_then(parse_version)
        .map(|v| ServerId {
            name: "redis".into(),
            version: v,
        })
}

/// Whether to declare atomic slot migration: Valkey 9+ that lists the option as one it knows.
pub fn declare_atomic_slot_migration(id: Option<&ServerId>, options_all: Option<u32>) -> bool {
    let valkey9 = id.is_some_and(|s| s.is_valkey() && s.version.0 >= 9);
    let known =
        options_all.is_some_and(|all| all & VALKEY_OPTIONS_HANDLE_ATOMIC_SLOT_MIGRATION != 0);
    valkey9 && known
}

fn server_id(ctx: &Context) -> Option<ServerId> {
    let text = match ctx.call("INFO", &["server"]) {
        Ok(RedisValue::SimpleString(s)) | Ok(RedisValue::BulkString(s)) => s,
        Ok(RedisValue::StringBuffer(b)) | Ok(RedisValue::VerbatimString((_, b))) => {
            String::from_utf8_lossy(&b).into_owned()
        }
        Ok(RedisValue::BulkRedisString(s)) => s.to_string_lossy(),
        _ => return None,
    };
    parse_server_info(&text)
}

/// What was found at load: the module options to add, and a line for the load log.
pub struct Detected {
    pub extra_options: u32,
    pub summary: String,
}

/// Looks at the server (call once, from the module's load).
pub fn detect(ctx: &Context) -> Detected {
    let id = server_id(ctx);
    let asm = declare_atomic_slot_migration(id.as_ref(), server::module_options_all());
    let apis: Vec<&str> = server::optional_apis()
        .iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| *name)
        .collect();
    let summary = format!(
        "server {}; atomic slot migration {}; missing APIs: {}",
        id.as_ref()
            .map_or_else(|| "unknown".to_string(), ServerId::describe),
        if asm { "declared" } else { "not available" },
        if apis.is_empty() {
            "none".to_string()
        } else {
            apis.join(", ")
        },
    );
    Detected {
        extra_options: if asm {
            VALKEY_OPTIONS_HANDLE_ATOMIC_SLOT_MIGRATION
        } else {
            0
        },
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALKEY9: &str = "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.1.2\r\nredis_git_sha1:0\r\n";
    const VALKEY8: &str =
        "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n";
    const REDIS8: &str = "# Server\r\nredis_version:8.2.3\r\nredis_git_sha1:b5d43ceb\r\n";

    #[test]
    fn names_the_server() {
        let v9 = parse_server_info(VALKEY9).unwrap();
        assert_eq!(v9.describe(), "valkey 9.1.2");
        assert_eq!(parse_server_info(VALKEY8).unwrap().version, (8, 0, 1));
        let r8 = parse_server_info(REDIS8).unwrap();
        assert_eq!(r8.describe(), "redis 8.2.3");
        assert!(!r8.is_valkey());
        assert_eq!(parse_server_info("# Server\r\n"), None);
        assert_eq!(
            parse_server_info("redis_version:x.y\r\n"),
            None,
            "an unreadable version is no version"
        );
    }

    #[test]
    fn atomic_slot_migration_only_on_valkey_9_that_lists_it() {
        let all = Some((1 << 6) - 1);
        let v9 = parse_server_info(VALKEY9);
        assert!(declare_atomic_slot_migration(v9.as_ref(), all));
        assert!(
            !declare_atomic_slot_migration(v9.as_ref(), Some((1 << 5) - 1)),
            "not listed"
        );
        assert!(!declare_atomic_slot_migration(v9.as_ref(), None));
        let v8 = parse_server_info(VALKEY8);
        assert!(!declare_atomic_slot_migration(v8.as_ref(), all));
        // Redis may give bit 5 another meaning: never set it there.
        let r8 = parse_server_info(REDIS8);
        assert!(!declare_atomic_slot_migration(r8.as_ref(), all));
        assert!(!declare_atomic_slot_migration(None, all));
    }
}
