//! ACL checks on keys a command writes without naming them as its key: the wins stream set
//! with `CONFIGURE ... STREAM` is written by every later win, so the caller must be allowed to
//! write it (`RedisModule_ACLCheckKeyPermissions`, Redis 7.0+).

use crate::ffi::server::{acl_may_write, AclError};
use redis_module::{Context, ContextFlags};

/// `Err(reply)` if the calling user may not write `key`. Replicated and loading contexts
/// (the master's stream, the AOF) are not checked: the command was checked where it ran.
/// A server without the ACL module API refuses rather than guesses.
pub fn check_write(ctx: &Context, key: &[u8], what: &str) -> Result<(), String> {
    if ctx
        .get_flags()
        .intersects(ContextFlags::REPLICATED | ContextFlags::LOADING)
    {
        return Ok(());
    }
    match acl_may_write(ctx, key) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!(
            "NOPERM this user has no permissions to write the {what} '{}'",
            crate::parse::shown(key)
        )),
        Err(AclError::NoApi) => {
            Err("ERR this server has no ACL API for modules (Redis 7.0+ needed)".into())
        }
        Err(AclError::NoUser) => Err("NOPERM the current user no longer exists".into()),
        Err(AclError::Unavailable) => Err("ERR module API unavailable".into()),
    }
}
