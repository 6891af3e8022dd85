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
    let (w, id) = local_wallet(g)?;
    Ok((Arc::new(w), id))
}

/// The wallet `-w` names (unlocked), or a throw-away one, and its id.
pub fn local_wallet(g: &Global) -> R<(LocalWallet, Option<String>)> {
    match &g.wallet {
        Some(name) => {
            let store = store(g)?;
            let info = store.find(name)?;
            let pw = ask_password(&info.name)?;
            let w = store.unlock(&info.id, &pw)?;
            Ok((w, Some(info.id)))
        }
        None => Ok((LocalWallet::generate(network(g)), None)),
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
    let scan = store.scan()?;
    let all = &scan.wallets;
    // A file that cannot be read is named with its problem, on stderr, and left alone:
    // it may be the only copy of a key (the good wallets are listed all the same).
    for bad in &scan.unreadable {
        if g.json {
            event(
                g,
                "wallet_unreadable",
                "",
                json!({"id": bad.id, "path": bad.path.display().to_string(),
                       "problem": bad.problem}),
            );
        } else {
            eprintln!("warning: cannot read wallet file {bad} (left as it is)");
        }
    }
    if g.json {
        for w in all {
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
    // Columns line up on a terminal: names are padded by their display width (a CJK
    // character or an emoji takes two cells), not by their count of chars.
    let name_cells = all
        .iter()
        .map(|w| display_width(&w.name))
        .max()
        .unwrap_or(0)
        .max(20);
    for w in all {
        let pad = " ".repeat(name_cells - display_width(&w.name));
        println!(
            "  {}{pad} {}  {:<7}  created {}  id {}",
            w.name,
            w.address,
            w.network.as_str(),
            w.created_at,
            w.id
        );
    }
    Ok(())
}

/// Terminal cells `s` takes: 2 for East Asian wide and fullwidth characters and emoji
/// presentation, 0 for combining marks, joiners and variation selectors, 1 otherwise
/// (Unicode UAX #11, the ranges that occur in names).
pub fn display_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

fn char_width(c: char) -> usize {
    let u = c as u32;
    let zero = matches!(u,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05BD | 0x0610..=0x061A
        | 0x064B..=0x065F | 0x0E31 | 0x0E34..=0x0E3A | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF
        | 0x200B..=0x200F | 0x20D0..=0x20FF | 0xFE00..=0xFE0F | 0xFE20..=0xFE2F
        | 0xE0100..=0xE01EF | 0x1F3FB..=0x1F3FF)
        || c.is_control();
    if zero {
        return 0;
    }
    let wide = matches!(u,
        0x1100..=0x115F | 0x231A..=0x231B | 0x2329..=0x232A | 0x23E9..=0x23EC | 0x23F0
        | 0x23F3 | 0x25FD..=0x25FE | 0x2614..=0x2615 | 0x2648..=0x2653 | 0x267F | 0x2693
        | 0x26A1 | 0x26AA..=0x26AB | 0x26BD..=0x26BE | 0x26C4..=0x26C5 | 0x26CE | 0x26D4
        | 0x26EA | 0x26F2..=0x26F3 | 0x26F5 | 0x26FA | 0x26FD | 0x2705 | 0x270A..=0x270B
        | 0x2728 | 0x274C | 0x274E | 0x2753..=0x2755 | 0x2757 | 0x2795..=0x2797 | 0x27B0
        | 0x27BF | 0x2B1B..=0x2B1C | 0x2B50 | 0x2B55 | 0x2E80..=0x303E | 0x3041..=0x33FF
        | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xA960..=0xA97F
        | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE10..=0xFE19 | 0xFE30..=0xFE6F
        | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x16FE0..=0x16FE4 | 0x17000..=0x18AFF
        | 0x1B000..=0x1B2FF | 0x1F004 | 0x1F0CF | 0x1F18E | 0x1F191..=0x1F19A
        | 0x1F200..=0x1F202 | 0x1F210..=0x1F23B | 0x1F240..=0x1F248 | 0x1F250..=0x1F251
        | 0x1F260..=0x1F265 | 0x1F300..=0x1F320 | 0x1F32D..=0x1F335 | 0x1F337..=0x1F37C
        | 0x1F37E..=0x1F393 | 0x1F3A0..=0x1F3CA | 0x1F3CF..=0x1F3D3 | 0x1F3E0..=0x1F3F0
        | 0x1F3F4 | 0x1F3F8..=0x1F43E | 0x1F440 | 0x1F442..=0x1F4FC | 0x1F4FF..=0x1F53D
        | 0x1F54B..=0x1F54E | 0x1F550..=0x1F567 | 0x1F57A | 0x1F595..=0x1F596 | 0x1F5A4
        | 0x1F5FB..=0x1F64F | 0x1F680..=0x1F6C5 | 0x1F6CC | 0x1F6D0..=0x1F6D2
        | 0x1F6D5..=0x1F6D7 | 0x1F6DC..=0x1F6DF | 0x1F6EB..=0x1F6EC | 0x1F6F4..=0x1F6FC
        | 0x1F7E0..=0x1F7EB | 0x1F7F0 | 0x1F90C..=0x1F93A | 0x1F93C..=0x1F945
        | 0x1F947..=0x1F9FF | 0x1FA70..=0x1FAFF | 0x20000..=0x2FFFD | 0x30000..=0x3FFFD);
    if wide {
        2
    } else {
        1
    }
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
        let pad = " ".repeat(20usize.saturating_sub(display_width(&w.name)));
        eprintln!("  [{}] {}{pad} {}", i + 1, w.name, w.address);
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

#[cfg(test)]
mod tests {
    use super::display_width;

    #[test]
    fn display_width_counts_terminal_cells() {
        assert_eq!(display_width("alice"), 5);
        assert_eq!(display_width("日本語"), 6);
        assert_eq!(display_width("지갑"), 4);
        assert_eq!(display_width("🚀"), 2);
        assert_eq!(display_width("Bob 🚀"), 6);
        assert_eq!(display_width("é"), 1);
        assert_eq!(display_width("e\u{301}"), 1);
        assert_eq!(display_width("👍🏽"), 2);
        assert_eq!(display_width("ｗｉｄｅ"), 8);
    }
}
