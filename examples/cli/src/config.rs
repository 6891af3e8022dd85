//! What the CLI persists besides wallets: aliases (a small JSON settings file) and the
//! invite-token file shared by `snap2p invite` and a running stealth `listen`.
//!
//! Invites belong to a running listener, which lives in another process; a file is the
//! simplest channel between them that survives restarts and needs no control socket.
//! `invite create` appends a token made by the core's `InviteBook`, `invite revoke`
//! removes it, and the listener re-reads the file every second (see `net::sync_invites`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde::{Deserialize, Serialize};
use serde_json::json;
use snap2p::identity::{normalize_alias, validate_display_name};
use snap2p::policy::{InviteBook, DEFAULT_INVITE_TTL_SECS};
use snap2p::ErrorCode;

use crate::out::{err, event, R};
use crate::Global;

/// Key under which the alias of ephemeral runs (no `-w`) is kept.
const EPHEMERAL_KEY: &str = "ephemeral";

#[derive(Serialize, Deserialize, Default, Clone, Debug, PartialEq)]
pub struct AliasEntry {
    pub alias: String,
    pub display_name: String,
}

#[derive(Serialize, Deserialize, Default)]
struct Settings {
    /// Wallet id (or "ephemeral") -> alias.
    #[serde(default)]
    aliases: BTreeMap<String, AliasEntry>,
}

fn settings_path(g: &Global) -> R<PathBuf> {
    if let Some(p) = &g.config {
        return Ok(p.clone());
    }
    Ok(crate::wallet::store(g)?.dir().join("snap2p-cli.json"))
}

fn io_err(what: &str, path: &Path, e: impl std::fmt::Display) -> snap2p::Error {
    err(
        ErrorCode::InvalidArgument,
        format!("{what} {}: {e}", path.display()),
    )
}

fn read_json<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> R<T> {
    match std::fs::read_to_string(path) {
        Ok(s) if s.trim().is_empty() => Ok(T::default()),
        Ok(s) => serde_json::from_str(&s).map_err(|e| io_err("cannot parse", path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(io_err("cannot read", path, e)),
    }
}

/// Writes through a temporary file and a rename, so a listener polling the file never
/// reads half of it.
fn write_json<T: Serialize>(path: &Path, value: &T) -> R<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let text = serde_json::to_string_pretty(value).expect("serializable");
    std::fs::write(&tmp, text + "\n").map_err(|e| io_err("cannot write", &tmp, e))?;
    #[cfg(unix)]
    {
        // Invite tokens are secrets: owner-only.
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600));
    }
    std::fs::rename(&tmp, path).map_err(|e| io_err("cannot write", path, e))
}

/// The alias to publish for the wallet `wallet_id` (None: ephemeral identity).
pub fn alias_for(g: &Global, wallet_id: Option<&str>) -> R<Option<AliasEntry>> {
    let s: Settings = read_json(&settings_path(g)?)?;
    Ok(s.aliases.get(wallet_id.unwrap_or(EPHEMERAL_KEY)).cloned())
}

#[derive(Subcommand, Debug)]
pub enum AliasCmd {
    /// Sets the alias (and display name) published after authentication.
    #[command(
        after_help = "Examples:\n  snap2p alias set alice --display-name 'Alice Liddell'   # ephemeral runs\n  snap2p alias set alice -w me                           # for wallet \"me\""
    )]
    Set {
        alias: String,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Shows the alias that listen/chat/dial will publish.
    #[command(after_help = "Example:\n  snap2p alias show -w me")]
    Show,
    /// Removes the alias.
    #[command(after_help = "Example:\n  snap2p alias clear -w me")]
    Clear,
}

fn alias_key(g: &Global) -> R<String> {
    match &g.wallet {
        // Keyed by wallet id so a rename does not lose the alias.
        Some(name) => Ok(crate::wallet::store(g)?.find(name)?.id),
        None => Ok(EPHEMERAL_KEY.to_string()),
    }
}

pub fn alias(g: &Global, cmd: AliasCmd) -> R<()> {
    let path = settings_path(g)?;
    let key = alias_key(g)?;
    let mut s: Settings = read_json(&path)?;
    match cmd {
        AliasCmd::Set {
            alias,
            display_name,
        } => {
            let alias = normalize_alias(&alias)?;
            let display_name = display_name.unwrap_or_else(|| alias.clone());
            validate_display_name(&display_name)?;
            let entry = AliasEntry {
                alias: alias.clone(),
                display_name: display_name.clone(),
            };
            s.aliases.insert(key.clone(), entry);
            write_json(&path, &s)?;
            event(
                g,
                "alias",
                format!("Alias for {key}: {alias} ({display_name})"),
                json!({"wallet": key, "alias": alias, "display_name": display_name}),
            );
        }
        AliasCmd::Show => {
            let e = s.aliases.get(&key);
            event(
                g,
                "alias",
                match e {
                    Some(e) => format!("Alias for {key}: {} ({})", e.alias, e.display_name),
                    None => format!("No alias set for {key}"),
                },
                json!({"wallet": key, "alias": e.map(|e| &e.alias),
                       "display_name": e.map(|e| &e.display_name)}),
            );
        }
        AliasCmd::Clear => {
            s.aliases.remove(&key);
            write_json(&path, &s)?;
            event(
                g,
                "alias",
                format!("Alias for {key} cleared"),
                json!({"wallet": key, "alias": null}),
            );
        }
    }
    Ok(())
}

/// One token of the invites file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct InviteRecord {
    pub id: String,
    /// Lowercase hex, what a dialer passes to `--invite`.
    pub token: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub one_time: bool,
}

#[derive(Serialize, Deserialize, Default)]
pub struct InviteFile {
    #[serde(default)]
    pub invites: Vec<InviteRecord>,
}

pub fn read_invites(path: &Path) -> R<InviteFile> {
    read_json(path)
}

/// Makes a token with the core's generator and appends it to the file.
pub fn add_invite(path: &Path, ttl: i64, one_time: bool) -> R<InviteRecord> {
    let now = snap2p::unix_now();
    let inv = InviteBook::new().create(ttl, one_time, now)?;
    let rec = InviteRecord {
        id: inv.id.clone(),
        token: inv.token_hex(),
        created_at: inv.created_at,
        expires_at: inv.expires_at,
        one_time,
    };
    let mut f = read_invites(path)?;
    f.invites.retain(|i| i.expires_at > now);
    f.invites.push(rec.clone());
    write_json(path, &f)?;
    Ok(rec)
}

#[derive(Subcommand, Debug)]
pub enum InviteCmd {
    /// Creates a token in the invites file (a listener using the file accepts it within 1 s).
    #[command(
        after_help = "Example:\n  snap2p invite create --invites-file ~/.snap2p/invites.json --ttl 3600 --one-time\n  snap2p chat 127.0.0.1:9000 --invite <printed token>"
    )]
    Create {
        #[arg(long, env = "SNAP2P_INVITES_FILE", value_name = "FILE")]
        invites_file: PathBuf,
        /// Validity in seconds.
        #[arg(long, default_value_t = DEFAULT_INVITE_TTL_SECS)]
        ttl: i64,
        /// The token works for one connection only.
        #[arg(long)]
        one_time: bool,
    },
    /// Lists unexpired tokens (ids; --show-tokens for the secrets).
    #[command(after_help = "Example:\n  snap2p invite list --invites-file ~/.snap2p/invites.json")]
    List {
        #[arg(long, env = "SNAP2P_INVITES_FILE", value_name = "FILE")]
        invites_file: PathBuf,
        #[arg(long)]
        show_tokens: bool,
    },
    /// Revokes a token by id (or the token itself); listeners drop it within 1 s.
    #[command(
        after_help = "Example:\n  snap2p invite revoke 3fa2c1d0 --invites-file ~/.snap2p/invites.json"
    )]
    Revoke {
        id_or_token: String,
        #[arg(long, env = "SNAP2P_INVITES_FILE", value_name = "FILE")]
        invites_file: PathBuf,
    },
}

pub fn invite(g: &Global, cmd: InviteCmd) -> R<()> {
    match cmd {
        InviteCmd::Create {
            invites_file,
            ttl,
            one_time,
        } => {
            let rec = add_invite(&invites_file, ttl, one_time)?;
            event(
                g,
                "invite",
                format!(
                    "Invite {} (expires in {}s{}):\n{}",
                    rec.id,
                    ttl,
                    if one_time { ", one-time" } else { "" },
                    rec.token
                ),
                serde_json::to_value(&rec).expect("serializable"),
            );
        }
        InviteCmd::List {
            invites_file,
            show_tokens,
        } => {
            let now = snap2p::unix_now();
            let f = read_invites(&invites_file)?;
            let live: Vec<_> = f.invites.iter().filter(|i| i.expires_at > now).collect();
            if live.is_empty() {
                event(g, "invite", "No unexpired invites", json!({"id": null}));
            }
            for i in live {
                let mut v = serde_json::to_value(i).expect("serializable");
                if !show_tokens {
                    v["token"] = serde_json::Value::Null;
                }
                event(
                    g,
                    "invite",
                    format!(
                        "{}  expires in {:>6}s  {}{}",
                        i.id,
                        i.expires_at - now,
                        if i.one_time { "one-time" } else { "reusable" },
                        if show_tokens {
                            format!("  {}", i.token)
                        } else {
                            String::new()
                        }
                    ),
                    v,
                );
            }
        }
        InviteCmd::Revoke {
            id_or_token,
            invites_file,
        } => {
            let needle = id_or_token.trim().to_ascii_lowercase();
            let mut f = read_invites(&invites_file)?;
            let before = f.invites.len();
            f.invites.retain(|i| {
                !(i.token == needle || (needle.len() >= 4 && i.id.starts_with(&needle)))
            });
            if f.invites.len() == before {
                return Err(err(
                    ErrorCode::InvalidArgument,
                    format!("no invite {id_or_token:?} in {}", invites_file.display()),
                ));
            }
            write_json(&invites_file, &f)?;
            event(
                g,
                "invite",
                format!("Revoked {}", id_or_token),
                json!({"revoked": id_or_token}),
            );
        }
    }
    Ok(())
}
