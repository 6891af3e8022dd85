//! Wallets: the core's encrypted store (`WalletStore`, TypeScript-compatible files),
//! passwords read without echo, and `signin`.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use clap::Subcommand;
use serde_json::json;
use snap2p::identity::{LocalWallet, Network, WalletStore, MIN_PASSWORD_LEN};
use snap2p::{ErrorCode, WalletSigner};

use crate::out::{err, event, note, R};
use crate::Global;

/// Environment variable holding the wallet password, for scripts and CI.
pub const PASSWORD_ENV: &str = "SNAP2P_PASSWORD";
/// Environment variable holding a recovery phrase for `wallet import`.
pub const MNEMONIC_ENV: &str = "SNAP2P_MNEMONIC";

#[derive(Subcommand, Debug)]
pub enum WalletCmd {
    /// Creates a wallet with a fresh 24-word recovery phrase.
    #[command(
        after_help = "Example:\n  snap2p wallet create --name alice\n  SNAP2P_PASSWORD=… snap2p wallet create --name ci --testnet"
    )]
    Create {
        /// Display name (default: "wallet N").
        #[arg(long)]
        name: Option<String>,
    },
    /// Lists saved wallets (no password needed).
    #[command(after_help = "Example:\n  snap2p wallet list\n  snap2p wallet list --json")]
    List,
    /// Saves an existing 12- or 24-word recovery phrase (account 0).
    #[command(
        after_help = "Example:\n  snap2p wallet import --name restored\n  SNAP2P_MNEMONIC='word1 … word24' SNAP2P_PASSWORD=… snap2p wallet import --name ci"
    )]
    Import {
        #[arg(long)]
        name: Option<String>,
    },
    /// Prints a wallet's recovery phrase (password required).
    #[command(after_help = "Example:\n  snap2p wallet export alice")]
    Export { name: String },
    /// Renames a wallet.
    #[command(after_help = "Example:\n  snap2p wallet rename alice alice-laptop")]
    Rename { name: String, new_name: String },
    /// Deletes a wallet file (asks first unless --yes).
    #[command(after_help = "Example:\n  snap2p wallet delete old --yes")]
    Delete {
        name: String,
        #[arg(long)]
        yes: bool,
    },
}

pub fn store(g: &Global) -> R<WalletStore> {
    match &g.wallet_dir {
        Some(d) => WalletStore::open(d),
        None => WalletStore::open_default(),
    }
}

fn network(g: &Global) -> Network {
    if g.testnet {
        Network::Testnet
    } else {
        Network::Mainnet
    }
}

/// A line from the terminal (or stdin when there is none), without the newline.
pub fn prompt_line(prompt: &str) -> R<String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let n = std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        err(
            ErrorCode::InvalidArgument,
            format!("cannot read stdin: {e}"),
        )
    })?;
    if n == 0 {
        return Err(err(ErrorCode::InvalidArgument, "no input (end of file)"));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// A secret: `$SNAP2P_PASSWORD`-style variable, else typed without echo on the terminal,
/// else one line of piped stdin.
fn read_secret(prompt: &str, env: &str) -> R<String> {
    if let Ok(v) = std::env::var(env) {
        return Ok(v);
    }
    if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt).map_err(|e| {
            err(
                ErrorCode::InvalidArgument,
                format!("cannot read password: {e}"),
            )
        })
    } else {
        prompt_line(prompt)
    }
}

/// The password of an existing wallet.
pub fn ask_password(name: &str) -> R<String> {
    read_secret(&format!("Password for wallet {name:?}: "), PASSWORD_ENV)
}

/// A new password, typed twice on a terminal; the minimum length is stated and enforced.
pub fn new_password() -> R<String> {
    let prompt = format!("New password (at least {MIN_PASSWORD_LEN} characters): ");
    let from_env = std::env::var(PASSWORD_ENV).is_ok();
    let pw = read_secret(&prompt, PASSWORD_ENV)?;
    if pw.chars().count() < MIN_PASSWORD_LEN {
        return Err(err(
            ErrorCode::WalletError,
            format!("the password must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if !from_env && std::io::stdin().is_terminal() {
        let again = rpassword::prompt_password("Repeat password: ").map_err(|e| {
            err(
                ErrorCode::InvalidArgument,
                format!("cannot read password: {e}"),
            )
        })?;
        if again != pw {
            return Err(err(ErrorCode::WalletError, "the passwords do not match"));
        }
    }
    Ok(pw)
}

fn default_name(store: &WalletStore) -> R<String> {
    let taken: Vec<String> = store.list()?.into_iter().map(|w| w.name).collect();
    let mut n = taken.len() + 1;
    loop {
        let name = format!("wallet {n}");
        if !taken.contains(&name) {
            return Ok(name);
        }
        n += 1;
    }
}

/// The signer for networking commands: the `-w` wallet, or a fresh throw-away identity.
pub fn signer(g: &Global) -> R<(Arc<dyn WalletSigner>, Option<String>)> {
    match &g.wallet {
        Some(name) => {
            let store = store(g)?;
            let info = store.find(name)?;
            let pw = ask_password(&info.name)?;
            let w = store.unlock(&info.id, &pw)?;
            Ok((Arc::new(w), Some(info.id)))
        }
        None => Ok((Arc::new(LocalWallet::generate(network(g))), None)),
    }
}

fn created(g: &Global, verb: &str, name: &str, w: &LocalWallet, id: &str, show_phrase: bool) {
    event(
        g,
        "wallet",
        format!(
            "{verb} wallet {name:?}\n  address: {}\n  network: {}\n  id:      {id}",
            w.principal().address(),
            w.network()
        ),
        json!({"name": name, "id": id, "address": w.principal().address(),
               "network": w.network().as_str(), "action": verb.to_lowercase()}),
    );
    if show_phrase && !g.json {
        println!(
            "\nRecovery phrase (write it down; anyone who has it controls this identity):\n  {}",
            w.mnemonic()
        );
    }
}

fn create(g: &Global, name: Option<String>) -> R<()> {
    let store = store(g)?;
    let name = match name {
        Some(n) => n,
        None => default_name(&store)?,
    };
    let pw = new_password()?;
    let (info, w) = store.create(&name, &pw, network(g))?;
    created(g, "Created", &info.name, &w, &info.id, true);
    Ok(())
}

fn import(g: &Global, name: Option<String>) -> R<()> {
    let store = store(g)?;
    let name = match name {
        Some(n) => n,
        None => default_name(&store)?,
    };
    let phrase = read_secret("Recovery phrase (12 or 24 words): ", MNEMONIC_ENV)?;
    let pw = new_password()?;
    let phrase = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
    let (info, w) = store.restore(&name, &phrase, &pw, network(g))?;
    created(g, "Restored", &info.name, &w, &info.id, false);
    Ok(())
}

fn list(g: &Global) -> R<()> {
    let store = store(g)?;
    let all = store.list()?;
    if g.json {
        for w in &all {
            event(
                g,
                "wallet",
                "",
                json!({"name": w.name, "id": w.id, "address": w.address,
                       "network": w.network.as_str(), "created_at": w.created_at}),
            );
        }
        return Ok(());
    }
    if all.is_empty() {
        println!(
            "No wallets in {} (create one: snap2p wallet create)",
            store.dir().display()
        );
        return Ok(());
    }
    println!("Wallets in {}:", store.dir().display());
    for w in &all {
        println!(
            "  {:<20} {}  {:<7}  created {}  id {}",
            w.name,
            w.address,
            w.network.as_str(),
            w.created_at,
            w.id
        );
    }
    Ok(())
}

pub fn run(g: &Global, cmd: WalletCmd) -> R<()> {
    match cmd {
        WalletCmd::Create { name } => create(g, name),
        WalletCmd::List => list(g),
        WalletCmd::Import { name } => import(g, name),
        WalletCmd::Export { name } => {
            let store = store(g)?;
            let info = store.find(&name)?;
            let pw = ask_password(&info.name)?;
            let phrase = store.export_mnemonic(&info.id, &pw)?;
            event(
                g,
                "mnemonic",
                &phrase,
                json!({"name": info.name, "address": info.address, "mnemonic": phrase}),
            );
            Ok(())
        }
        WalletCmd::Rename { name, new_name } => {
            let info = store(g)?.rename(&name, &new_name)?;
            event(
                g,
                "wallet",
                format!("Renamed {name:?} to {:?} ({})", info.name, info.address),
                json!({"name": info.name, "id": info.id, "address": info.address, "action": "renamed"}),
            );
            Ok(())
        }
        WalletCmd::Delete { name, yes } => {
            let store = store(g)?;
            let info = store.find(&name)?;
            if !yes {
                if !std::io::stdin().is_terminal() {
                    return Err(err(
                        ErrorCode::InvalidArgument,
                        "refusing to delete without confirmation: pass --yes",
                    ));
                }
                let answer = prompt_line(&format!(
                    "Delete wallet {:?} ({})? Without its recovery phrase it is gone for good. [y/N] ",
                    info.name, info.address
                ))?;
                if !answer.trim().eq_ignore_ascii_case("y") {
                    return Err(err(ErrorCode::InvalidArgument, "not deleted"));
                }
            }
            store.delete(&info.id)?;
            event(
                g,
                "wallet",
                format!("Deleted wallet {:?} ({})", info.name, info.address),
                json!({"name": info.name, "id": info.id, "address": info.address, "action": "deleted"}),
            );
            Ok(())
        }
    }
}

/// Interactive sign-in, like the TypeScript demo's: unlock a saved wallet, create one,
/// or restore one from its recovery phrase.
pub fn signin(g: &Global) -> R<()> {
    let store = store(g)?;
    let all = store.list()?;
    eprintln!("snap2p sign-in (wallets in {})", store.dir().display());
    for (i, w) in all.iter().enumerate() {
        eprintln!("  [{}] {:<20} {}", i + 1, w.name, w.address);
    }
    eprintln!("  [c] create a new wallet");
    eprintln!("  [r] restore from a recovery phrase");
    let choice = prompt_line("Choice: ")?;
    let choice = choice.trim();
    match choice {
        "c" | "C" => {
            let name = prompt_line("Name for the new wallet: ")?;
            create(g, Some(name).filter(|n| !n.trim().is_empty()))
        }
        "r" | "R" => {
            let name = prompt_line("Name for the restored wallet: ")?;
            import(g, Some(name).filter(|n| !n.trim().is_empty()))
        }
        other => {
            let info = match other.parse::<usize>() {
                Ok(i) if i >= 1 && i <= all.len() => all[i - 1].clone(),
                _ => store.find(other)?,
            };
            let pw = ask_password(&info.name)?;
            let w = store.unlock(&info.id, &pw)?;
            event(
                g,
                "signin",
                format!(
                    "Signed in as {:?}: {}\nUse it with: snap2p listen 9000 -w {:?}",
                    info.name,
                    w.principal(),
                    info.name
                ),
                json!({"name": info.name, "id": info.id, "principal": w.principal().to_string()}),
            );
            note(g, "");
            Ok(())
        }
    }
}
