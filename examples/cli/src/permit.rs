//! Permissions in the CLI (docs/PROTOCOL.md §33, docs/CLI.md "Permissions"): `--permit`,
//! a rules file re-read every second like the invites file, `--grant-owner`, `--grant`
//! (present a grant after dialing) and `snap2p grant issue|show`. Every decision is the
//! core's (`snap2p::policy::Permissions`); this file only reads options and files.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use snap2p::identity::{GrantRequest, PermissionGrant, SignatureForm};
use snap2p::policy::PermissionRules;
use snap2p::{Connection, ErrorCode, Peer, PeerConfig, Principal};

use crate::out::{err, event, note, R};
use crate::Global;

/// Permission options of the commands that start a peer.
#[derive(Args, Debug, Clone, Default)]
pub struct PermitOpts {
    /// Lets PRINCIPAL (`stacks:…`, or `*` for any authenticated principal) open streams of
    /// these labels (`files`, `chat*` = prefix, `*` = all); repeatable. Once any rule is
    /// given, other labels are refused (ERR_STREAM_REFUSED).
    #[arg(long = "permit", value_name = "PRINCIPAL:LABEL[,LABEL]")]
    pub permit: Vec<String>,
    /// Rules file, re-read every second: lines `PRINCIPAL:LABELS [streams=N] [rate=B]`,
    /// `owner PRINCIPAL`, `revoke GRANT_ID|PRINCIPAL`, `#` comments.
    #[arg(long = "rules-file", env = "SNAP2P_RULES_FILE", value_name = "FILE")]
    pub rules_file: Option<PathBuf>,
    /// Also honour grants signed by this principal (the node's own always are); repeatable.
    #[arg(long = "grant-owner", value_name = "PRINCIPAL")]
    pub grant_owner: Vec<String>,
}

/// What a rules file says.
#[derive(Debug, Default, PartialEq)]
pub struct RulesFile {
    pub rules: PermissionRules,
    pub owners: Vec<Principal>,
    pub revoked: Vec<String>,
}

/// Parses a rules file's text; errors name the line.
pub fn parse_rules_file(text: &str) -> R<RulesFile> {
    let mut f = RulesFile::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let at = |e: snap2p::Error| err(e.code, format!("line {}: {}", n + 1, e.message));
        if line.is_empty() || line.starts_with('#') {
            continue;
        } else if let Some(p) = line.strip_prefix("owner ") {
            f.owners.push(Principal::parse(p.trim()).map_err(at)?);
        } else if let Some(r) = line.strip_prefix("revoke ") {
            // Checked by the core's parser when applied; checked here too so a bad line is
            // reported with its number.
            snap2p::policy::Permissions::new().revoke(r).map_err(at)?;
            f.revoked.push(r.trim().to_string());
        } else {
            f.rules.add_line(line).map_err(at)?;
        }
    }
    Ok(f)
}

fn permit_rules(opts: &PermitOpts) -> R<PermissionRules> {
    let mut rules = PermissionRules::new();
    for p in &opts.permit {
        rules
            .add_line(p)
            .map_err(|e| err(e.code, format!("--permit {p:?}: {}", e.message)))?;
    }
    Ok(rules)
}

fn merge(mut a: PermissionRules, b: &PermissionRules) -> PermissionRules {
    if let Some(any) = &b.any {
        let r = a.permit(None, &any.labels);
        r.max_streams = any.max_streams.or(r.max_streams);
        r.send_rate = any.send_rate.or(r.send_rate);
    }
    for (p, rule) in &b.by_principal {
        let r = a.permit(Some(p.clone()), &rule.labels);
        r.max_streams = rule.max_streams.or(r.max_streams);
        r.send_rate = rule.send_rate.or(r.send_rate);
    }
    a
}

/// Sets the peer configuration's rules (`--permit` and the rules file as it is now) and
/// grant owners. No `--permit` and no rules file: no rules (every label allowed).
pub fn configure(cfg: &mut PeerConfig, opts: &PermitOpts) -> R<()> {
    for o in &opts.grant_owner {
        cfg.grant_owners.push(Principal::parse(o)?);
    }
    if opts.permit.is_empty() && opts.rules_file.is_none() {
        return Ok(());
    }
    let mut rules = permit_rules(opts)?;
    if let Some(path) = &opts.rules_file {
        let file = read_rules_file(path)?;
        rules = merge(rules, &file.rules);
        cfg.grant_owners.extend(file.owners);
    }
    cfg.permissions = Some(rules);
    Ok(())
}

fn read_rules_file(path: &Path) -> R<RulesFile> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_rules_file(&text)
            .map_err(|e| err(e.code, format!("{}: {}", path.display(), e.message))),
        // A missing file is an empty one (no rule yet), as for the invites file.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RulesFile::default()),
        Err(e) => Err(err(
            ErrorCode::InvalidArgument,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// Re-reads the rules file every second and applies what changed: rules (with the
/// `--permit` ones), owners from the file, the revocation list. Sessions stay up; a bad
/// file is reported and the rules in force are kept.
pub fn watch(g: &Global, peer: &Peer, opts: &PermitOpts) {
    let Some(path) = opts.rules_file.clone() else {
        return;
    };
    let (g, peer, opts) = (g.clone(), peer.clone(), opts.clone());
    tokio::spawn(async move {
        let mut last: Option<String> = None;
        let mut file_owners: HashSet<Principal> = HashSet::new();
        let fixed: HashSet<Principal> = opts
            .grant_owner
            .iter()
            .filter_map(|o| Principal::parse(o).ok())
            .chain(std::iter::once(peer.principal().clone()))
            .collect();
        loop {
            if peer.is_closed() {
                return;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if last.as_deref() != Some(text.as_str()) {
                let applied = parse_rules_file(&text).and_then(|f| {
                    let rules = merge(permit_rules(&opts)?, &f.rules);
                    let perms = peer.permissions();
                    perms.set_revoked(&f.revoked)?;
                    perms.set_rules(Some(rules));
                    let now: HashSet<Principal> = f.owners.into_iter().collect();
                    for gone in file_owners.difference(&now) {
                        if !fixed.contains(gone) {
                            perms.remove_owner(gone);
                        }
                    }
                    for o in &now {
                        perms.add_owner(o.clone());
                    }
                    file_owners = now;
                    Ok(())
                });
                match applied {
                    Ok(()) if last.is_some() => note(
                        &g,
                        format!("* rules file {} re-read and applied", path.display()),
                    ),
                    Ok(()) => {}
                    Err(e) => note(
                        &g,
                        format!(
                            "* rules file {}: {} (rules in force kept)",
                            path.display(),
                            e.message
                        ),
                    ),
                }
                last = Some(text);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// Reads a grant from a file: hex text (what `snap2p grant issue` writes) or raw CBOR.
pub fn read_grant(path: &Path) -> R<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| {
        err(
            ErrorCode::InvalidArgument,
            format!("cannot read grant {}: {e}", path.display()),
        )
    })?;
    if bytes.len() > 4 * snap2p::identity::MAX_GRANT_LEN {
        return Err(err(
            ErrorCode::InvalidArgument,
            format!("{} is too large to be a grant", path.display()),
        ));
    }
    Ok(std::str::from_utf8(&bytes)
        .ok()
        .and_then(|t| hex::decode(t.trim()).ok())
        .unwrap_or(bytes))
}

/// Presents each `--grant` file on a new session (docs/PROTOCOL.md §33.4).
pub async fn present(g: &Global, conn: &Connection, grants: &[PathBuf]) -> R<()> {
    for path in grants {
        let bytes = read_grant(path)?;
        conn.present_grant(&bytes).await.map_err(|e| {
            err(
                e.code,
                format!("grant {} refused: {}", path.display(), e.message),
            )
        })?;
        note(g, format!("* grant {} accepted", path.display()));
    }
    Ok(())
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// SHA-256 of the signing bytes (like the attestation's Digest form).
    Digest,
    /// The readable message text, as phone and browser wallets sign ("sign message").
    Message,
}

#[derive(Subcommand, Debug)]
pub enum GrantCmd {
    /// Signs a grant with the wallet (-w): HOLDER may open LABELs on nodes that list this
    /// wallet's principal as an owner (every node run with this wallet does).
    #[command(
        after_help = "Examples:\n  snap2p grant issue -w owner --holder stacks:SP… --label files --label 'chat*' --out friend.grant\n  snap2p chat 127.0.0.1:9000 -w friend --grant friend.grant"
    )]
    Issue {
        /// The principal the grant is for.
        #[arg(long)]
        holder: String,
        /// A label pattern it may open (repeatable; `x*` = prefix, `*` = all).
        #[arg(long = "label", value_name = "LABEL", required = true)]
        labels: Vec<String>,
        /// Validity in seconds.
        #[arg(long, default_value_t = PermissionGrant::DEFAULT_TTL_SECS)]
        ttl: i64,
        /// The holder may delegate (one level) a subset of the labels.
        #[arg(long)]
        delegable: bool,
        /// Delegate from this grant (held by the wallet signing now).
        #[arg(long, value_name = "FILE")]
        parent: Option<PathBuf>,
        /// Signature form.
        #[arg(long, value_enum, default_value_t = Form::Message)]
        form: Form,
        /// Write the grant (hex) here instead of printing it.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Decodes and verifies a grant file and prints its fields and id (what `revoke` takes).
    Show { file: PathBuf },
}

fn show(g: &Global, grant: &PermissionGrant, verified: &str) {
    event(
        g,
        "grant",
        format!(
            "grant {}\n  issuer:    {}\n  holder:    {}\n  labels:    {}\n  delegable: {}\n  delegated: {}\n  expires:   {}\n  form:      {:?}\n  {verified}",
            grant.id(),
            grant.issuer,
            grant.holder,
            grant.labels.join(", "),
            grant.delegable,
            grant.parent.is_some(),
            snap2p::identity::rfc3339(grant.expires_at),
            grant.form,
        ),
        json!({"id": grant.id(), "issuer": grant.issuer.to_string(), "holder": grant.holder.to_string(),
               "labels": grant.labels, "delegable": grant.delegable, "delegated": grant.parent.is_some(),
               "expires_at": grant.expires_at, "verified": verified}),
    );
}

pub async fn grant(g: &Global, cmd: GrantCmd) -> R<()> {
    match cmd {
        GrantCmd::Issue {
            holder,
            labels,
            ttl,
            delegable,
            parent,
            form,
            out,
        } => {
            let form = match form {
                Form::Digest => SignatureForm::Digest,
                Form::Message => SignatureForm::StacksMessage,
            };
            let signer = crate::wallet::local_wallet(g)?.0.with_form(form);
            let labels = labels
                .iter()
                .flat_map(|l| l.split(','))
                .map(str::to_string)
                .collect();
            let parent = parent.as_deref().map(read_grant).transpose()?;
            let grant = PermissionGrant::issue(
                &signer,
                GrantRequest {
                    holder: Principal::parse(&holder)?,
                    labels,
                    delegable,
                    parent,
                    ttl_secs: ttl,
                },
                snap2p::unix_now(),
            )
            .await?;
            let hex = hex::encode(grant.encode());
            match &out {
                Some(path) => std::fs::write(path, format!("{hex}\n")).map_err(|e| {
                    err(
                        ErrorCode::InvalidArgument,
                        format!("cannot write {}: {e}", path.display()),
                    )
                })?,
                None if !g.json => println!("{hex}"),
                None => {}
            }
            show(g, &grant, "signed");
            Ok(())
        }
        GrantCmd::Show { file } => {
            let bytes = read_grant(&file)?;
            let grant = PermissionGrant::decode(&bytes)?;
            let verified = match grant.verify(snap2p::unix_now(), snap2p::NetworkFilter::ANY) {
                Ok(_) => "signature and validity: ok".to_string(),
                Err(e) => format!("NOT VALID: {} ({})", e.message, e.code.name()),
            };
            show(g, &grant, &verified);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_file_lines() {
        let p = snap2p::LocalWallet::generate(snap2p::Network::Mainnet).principal();
        let f = parse_rules_file(&format!(
            "# team\n{p}:files streams=3\nowner {p}\nrevoke {p}\n\n*:catalog\n"
        ))
        .unwrap();
        assert_eq!(f.owners, vec![p.clone()]);
        assert_eq!(f.revoked, vec![p.to_string()]);
        assert_eq!(f.rules.by_principal[&p].max_streams, Some(3));
        assert!(f.rules.any.is_some());
        let e = parse_rules_file("*:catalog\nrevoke nothing-like-an-id\n").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(e.message.starts_with("line 2:"), "{}", e.message);
        let e = parse_rules_file("owner stacks:nope\n").unwrap_err();
        assert!(e.message.starts_with("line 1:"), "{}", e.message);
    }
}
