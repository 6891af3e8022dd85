//! `snap2p`: the command-line face of the snap2p core.
//!
//! Every protocol decision (handshake, KNOCK, invites, allowlists, PX-1) is made by the
//! core; this binary only parses arguments, reads passwords, persists the user's CLI
//! settings (alias, invite file) and prints what happens. See `docs/CLI.md`.

#[cfg(all(
    feature = "jemalloc",
    not(any(target_env = "msvc", target_family = "wasm"))
))]
mod alloc;
mod config;
mod demo;
mod metrics;
mod net;
mod out;
mod permit;
mod wallet;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use snap2p::identity::WALLET_DIR_ENV;

/// Options shared by every command.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Wallet directory (default: ~/.snap2p/wallets).
    #[arg(long, global = true, env = WALLET_DIR_ENV, value_name = "DIR")]
    pub wallet_dir: Option<PathBuf>,
    /// CLI settings file holding aliases (default: <wallet-dir>/snap2p-cli.json).
    #[arg(long, global = true, env = "SNAP2P_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Use the saved wallet NAME (or id) instead of a throw-away one.
    #[arg(short = 'w', long = "wallet", global = true, value_name = "NAME")]
    pub wallet: Option<String>,
    /// Use Stacks testnet (ST… addresses) for new wallets and ephemeral identities.
    #[arg(long, global = true)]
    pub testnet: bool,
    /// Machine-readable output: one JSON object per line (`demo`: one document).
    #[arg(long, global = true)]
    pub json: bool,
}

/// Options of the commands that start a peer.
#[derive(Args, Debug, Clone)]
pub struct PeerOpts {
    /// Who may find and reach this node.
    #[arg(long, value_enum, default_value_t = Vis::Public)]
    pub visibility: Vis,
    /// Let this principal in (repeatable); turns on the allowlist gate.
    #[arg(long = "allow", value_name = "PRINCIPAL")]
    pub allow: Vec<String>,
    /// Alias to publish for this run (overrides `alias set`).
    #[arg(long)]
    pub alias: Option<String>,
    /// Also trust the root certificate(s) of this PEM file for `wss://` (repeatable; for
    /// private deployments and tests; Mozilla's roots are always trusted).
    #[arg(long = "tls-root", value_name = "FILE")]
    pub tls_root: Vec<PathBuf>,
    /// A relay (`host:port` or `relay://host:port`): `listen` keeps a reservation on it
    /// (reachable behind NAT as `relay://host:port/SP…`); `chat`/`dial` reach a `stacks:`
    /// principal through it.
    #[arg(long = "relay", value_name = "LOCATOR")]
    pub relay: Vec<String>,
    /// mDNS on the LAN: `listen` announces this node (Public only; Private and Stealth
    /// never announce); `chat`/`dial` find a `stacks:` principal on the link.
    #[arg(long)]
    pub mdns: bool,
    /// Resolve BNS names (`alice.btc`) through these Stacks API nodes (comma-separated or
    /// repeated, e.g. `https://api.hiro.so`); every one is asked and all must agree.
    #[arg(long = "bns", value_name = "URL", value_delimiter = ',')]
    pub bns: Vec<String>,
    #[command(flatten)]
    pub permit: permit::PermitOpts,
    #[command(flatten)]
    pub dht: DhtOpts,
    /// Speak the wire of the TypeScript SNaP2P implementation (`ts`) instead of standard
    /// snap2p, to listen for or dial its nodes (docs/PROTOCOL.md §12). A listener speaks one
    /// profile: run a second `listen` on another port for the other.
    #[arg(long, value_enum, value_name = "PROFILE")]
    pub compat: Option<Compat>,
    /// Speak only the v1 handshake of three round trips, as nodes released before hs2
    /// (docs/PROTOCOL.md §5.8): dials offer no hs2, and a listener closes on an offer
    /// without a word (a dialer then comes again with v1). For testing against old nodes;
    /// by default hs2 is offered and accepted.
    #[arg(long)]
    pub v1: bool,
}

/// `--compat`: the wire profiles besides the standard one.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compat {
    /// The TypeScript SNaP2P implementation (alexrudloff/SNaP2P 0.1).
    Ts,
}

/// The Mainline DHT (docs/PROTOCOL.md §35): `listen` on a Public node publishes its
/// signed advert and announces its principal; every command resolves `stacks:` through it.
#[derive(Args, Debug, Clone, Default)]
pub struct DhtOpts {
    /// Join the Mainline DHT through these bootstrap nodes (`HOST:PORT,…`: a private or
    /// local DHT).
    #[arg(
        long = "dht-bootstrap",
        value_name = "HOST:PORT,...",
        value_delimiter = ','
    )]
    pub dht_bootstrap: Vec<String>,
    /// Join the public Mainline DHT (its usual bootstrap nodes).
    #[arg(long)]
    pub dht: bool,
    /// Keep the verified adverts found in this file across runs (the freshest per node key).
    #[arg(long, value_name = "FILE")]
    pub advert_cache: Option<PathBuf>,
}

/// The listeners of `listen`: a TCP address, a WebSocket port, a WSS port.
#[derive(Args, Debug, Clone)]
pub struct ListenOpts {
    /// Port or address (`9000`, `127.0.0.1:9000`, `[::]:9000`, or any listen locator such
    /// as `ws://0.0.0.0:8080/snap2p`). Optional when `--ws` or `--wss` is given.
    #[arg(required_unless_present_any = ["ws", "wss", "relay"])]
    pub addr: Option<String>,
    #[command(flatten)]
    pub web: WebListenOpts,
    /// Also advertise this locator (PX-1), before the listeners' own: what others reach
    /// this node on through a reverse proxy or a forwarded port, e.g.
    /// `wss://node.example.org:443/snap2p` for nginx in front of `--ws 127.0.0.1:9001`
    /// (repeatable).
    #[arg(long, value_name = "LOCATOR")]
    pub advertise: Vec<String>,
    /// Serve `/metrics` (Prometheus), `/health` and `/ready` over HTTP on this address
    /// (`127.0.0.1:9100`; port 0: any free one, printed at start).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
}

impl ListenOpts {
    /// Every listen locator asked for, TCP first.
    pub fn locators(&self) -> Vec<String> {
        self.web.locators(self.addr.as_deref())
    }
}

/// The WebSocket listeners of `listen` and `relay`: `--ws`, `--wss` and their path and
/// TLS files.
#[derive(Args, Debug, Clone)]
pub struct WebListenOpts {
    /// Also listen for WebSocket (`ws://`) on this port (all IPv4 interfaces) or address.
    #[arg(long, value_name = "PORT|ADDR")]
    pub ws: Option<String>,
    /// Also listen for WebSocket over TLS (`wss://`) on this port or address; needs
    /// `--tls-cert` and `--tls-key`.
    #[arg(long, value_name = "PORT|ADDR", requires_all = ["tls_cert", "tls_key"])]
    pub wss: Option<String>,
    /// The HTTP path the `--ws`/`--wss` listeners serve (others get 404).
    #[arg(long, value_name = "PATH", default_value = "/")]
    pub ws_path: String,
    /// The `--wss` listener's certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE", requires = "wss")]
    pub tls_cert: Option<PathBuf>,
    /// The `--wss` listener's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "wss")]
    pub tls_key: Option<PathBuf>,
}

impl WebListenOpts {
    /// The certificate and key a `wss://` listener presents, when both are given.
    pub fn tls_identity(&self) -> Option<(&std::path::Path, &std::path::Path)> {
        self.tls_cert.as_deref().zip(self.tls_key.as_deref())
    }

    /// `addr` (if any), then the `--ws` and `--wss` listen locators.
    pub fn locators(&self, addr: Option<&str>) -> Vec<String> {
        let (ws, wss) = (self.ws.as_deref(), self.wss.as_deref());
        let path = if self.ws_path.starts_with('/') {
            self.ws_path.clone()
        } else {
            format!("/{}", self.ws_path)
        };
        let ws_loc = |scheme: &str, a: &str| {
            if a.contains("://") {
                a.to_string()
            } else if a.parse::<u16>().is_ok() {
                format!("{scheme}://0.0.0.0:{a}{path}")
            } else {
                format!("{scheme}://{a}{path}")
            }
        };
        let mut out: Vec<String> = addr.map(str::to_string).into_iter().collect();
        out.extend(ws.map(|a| ws_loc("ws", a)));
        out.extend(wss.map(|a| ws_loc("wss", a)));
        out
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vis {
    Public,
    Private,
    Stealth,
}

/// Options of the commands that dial.
#[derive(Args, Debug, Clone)]
pub struct DialOpts {
    /// Invite token (hex) for a stealth node.
    #[arg(long, value_name = "TOKEN")]
    pub invite: Option<String>,
    /// Ask these peers first (PX-1) when the target is a principal (repeatable).
    #[arg(long = "via", value_name = "LOCATOR")]
    pub via: Vec<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 15)]
    pub timeout: u64,
    /// Present this PermissionGrant (file from `snap2p grant issue`) after connecting;
    /// repeatable (docs/CLI.md, Permissions).
    #[arg(long = "grant", value_name = "FILE")]
    pub grant: Vec<PathBuf>,
    /// Through a relay: then try a hole punch (TCP simultaneous open, at most about 5 s)
    /// and use the direct session when it works; stay relayed when it does not.
    #[arg(long)]
    pub punch: bool,
}

#[derive(Parser, Debug)]
#[command(
    name = "snap2p",
    version,
    about = "Stacks-native P2P sessions and streams: chat, echo, wallets, invites, PX-1",
    after_help = "Examples:\n  snap2p demo\n  snap2p listen 9000                 # terminal 1\n  snap2p chat 127.0.0.1:9000         # terminal 2\n  snap2p wallet create --name me && snap2p listen 9000 -w me\n\nEnvironment: SNAP2P_WALLET_DIR, SNAP2P_PASSWORD (automation), SNAP2P_CONFIG, SNAP2P_INVITES_FILE."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Runs a scripted tour on loopback: auth, aliases, streams, PX-1, stealth invites.
    #[command(
        after_help = "Example:\n  cargo run --release -p snap2p-cli -- demo\n  snap2p demo --json | jq .steps"
    )]
    Demo,
    /// Listens for peers: shows who connects, echoes streams, chats on "chat" streams.
    #[command(
        after_help = "Examples:\n  snap2p listen 9000\n  snap2p listen 127.0.0.1:9000 -w me --visibility private --allow stacks:SP…\n  snap2p listen 9000 --visibility stealth --invites-file ~/.snap2p/invites.json\n  snap2p listen 9000 --ws 8080 --ws-path /snap2p     # TCP and WebSocket at once\n  snap2p listen --wss 443 --tls-cert fullchain.pem --tls-key key.pem\n\nLines typed on stdin are sent to every connected chat peer."
    )]
    Listen {
        #[command(flatten)]
        listen: ListenOpts,
        #[command(flatten)]
        peer: PeerOpts,
        /// Invite tokens to accept: created/revoked by `snap2p invite`, re-read every second.
        #[arg(long, env = "SNAP2P_INVITES_FILE", value_name = "FILE")]
        invites_file: Option<PathBuf>,
        /// Validity of the invite a stealth listener prints at start, in seconds.
        #[arg(long, default_value_t = 86_400)]
        invite_ttl: i64,
    },
    /// Interactive two-way chat with a peer on one stream labelled "chat".
    #[command(
        after_help = "Examples:\n  snap2p chat 127.0.0.1:9000\n  snap2p chat stacks:SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7 --via 127.0.0.1:9000\n  echo hello | snap2p chat 127.0.0.1:9000     # no terminal: stdin lines until EOF\n\nCtrl+D or Ctrl+C ends the chat."
    )]
    Chat {
        /// `ip:port`, `host:port` or `stacks:<principal>` (resolved through PX-1).
        target: String,
        #[command(flatten)]
        dial: DialOpts,
        #[command(flatten)]
        peer: PeerOpts,
    },
    /// Sends one message on a new stream, prints the echo and exits.
    #[command(
        after_help = "Example:\n  snap2p dial 127.0.0.1:9000 -m 'hello'\n  snap2p dial 127.0.0.1:9000 -m hi --invite 3f2a…   # stealth node\n  snap2p dial wss://node.example.org:443/snap2p -m hi --tls-root ca.pem"
    )]
    Dial {
        /// A locator (`ip:port`, `host:port`, `ws://…`, `wss://…`) or `stacks:<principal>`
        /// (resolved through PX-1).
        target: String,
        /// The message to send.
        #[arg(short, long)]
        message: String,
        #[command(flatten)]
        dial: DialOpts,
        #[command(flatten)]
        peer: PeerOpts,
    },
    /// Finds a principal through the resolver chain (cache, PX-1, mDNS, DHT, BNS), says
    /// which step answered and how long each took, then dials to verify who is there.
    #[command(
        after_help = "Examples:\n  snap2p resolve stacks:SP2J6ZY48GV1EZ5V2V5RB9MP66SW86PYKKNRV9EJ7 --via 127.0.0.1:9000\n  snap2p resolve stacks:SP2J… --dht-bootstrap 127.0.0.1:6881 --json\n  snap2p resolve stacks:SP2J… --dht --steps cache,dht --no-dial"
    )]
    Resolve {
        /// `stacks:SP…` (the `stacks:` prefix is optional).
        principal: String,
        /// Peers to connect to first, so the PX-1 step can ask them (repeatable).
        #[arg(long = "via", value_name = "LOCATOR")]
        via: Vec<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 15)]
        timeout: u64,
        /// Also trust this PEM file's root certificate(s) for `wss://` (repeatable).
        #[arg(long = "tls-root", value_name = "FILE")]
        tls_root: Vec<PathBuf>,
        /// The chain's steps, in order (default: cache,px-1,mdns,dht,bns).
        #[arg(long, value_name = "STEP,...", value_delimiter = ',')]
        steps: Vec<String>,
        /// Only resolve: do not dial the locators found.
        #[arg(long)]
        no_dial: bool,
        #[command(flatten)]
        dht: DhtOpts,
        /// Run mDNS for the chain's `mdns` step (peers on this link).
        #[arg(long)]
        mdns: bool,
    },
    /// Signs in interactively: create, restore from a recovery phrase, or unlock a wallet.
    #[command(
        after_help = "Example:\n  snap2p signin\n  snap2p listen 9000 -w <the wallet name it printed>"
    )]
    Signin,
    /// Runs a relay: peers behind NAT keep reservations on it, others reach them through it.
    #[command(
        after_help = "Examples:\n  snap2p relay 4001\n  snap2p relay 0.0.0.0:4001 --reserve-allow stacks:SP… --max-reservations 100\n  snap2p relay 4001 --wss 443 --ws-path /relay --tls-cert cert.pem --tls-key key.pem\n\nPeers behind NAT: snap2p listen --relay HOST:4001 (or --relay wss://HOST:443/relay); others: snap2p chat stacks:SP… --relay HOST:4001"
    )]
    Relay(net::RelayOpts),
    /// Manages saved wallets (file format shared with the TypeScript implementation).
    #[command(subcommand)]
    Wallet(wallet::WalletCmd),
    /// Manages invite tokens in the file a stealth listener reads (`--invites-file`).
    #[command(subcommand)]
    Invite(config::InviteCmd),
    /// Sets the alias published by listen/chat/dial (per wallet, or for ephemeral runs).
    #[command(subcommand)]
    Alias(config::AliasCmd),
    /// Signs and inspects PermissionGrants (who may open which stream labels).
    #[command(subcommand)]
    Grant(permit::GrantCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let g = cli.global.clone();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let g2 = g.clone();
    // The command runs as a task on the worker threads rather than on this thread, so
    // wake-ups from plain threads (the line editor) reach it promptly.
    let task = rt.spawn(async move {
        let g = g2;
        match cli.cmd {
            Cmd::Demo => demo::run(&g).await,
            Cmd::Listen {
                listen,
                peer,
                invites_file,
                invite_ttl,
            } => net::listen(&g, &listen, &peer, invites_file, invite_ttl).await,
            Cmd::Chat { target, dial, peer } => net::chat(&g, &target, &dial, &peer).await,
            Cmd::Dial {
                target,
                message,
                dial,
                peer,
            } => net::dial(&g, &target, &message, &dial, &peer).await,
            Cmd::Resolve {
                principal,
                via,
                timeout,
                tls_root,
                steps,
                no_dial,
                dht,
                mdns,
            } => {
                let o = net::ResolveOpts {
                    via,
                    timeout,
                    tls_root,
                    steps,
                    no_dial,
                    dht,
                    mdns,
                };
                net::resolve(&g, &principal, &o).await
            }
            Cmd::Relay(r) => net::relay(&g, &r).await,
            Cmd::Signin => wallet::signin(&g),
            Cmd::Wallet(w) => wallet::run(&g, w),
            Cmd::Invite(i) => config::invite(&g, i),
            Cmd::Alias(a) => config::alias(&g, a),
            Cmd::Grant(c) => permit::grant(&g, c).await,
        }
    });
    let result = rt.block_on(task).unwrap_or_else(|e| {
        Err(snap2p::Error::new(
            snap2p::ErrorCode::Internal,
            e.to_string(),
        ))
    });
    // Stdin readers parked in blocking threads must not keep the process alive.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            out::print_error(&g, &e);
            ExitCode::FAILURE
        }
    }
}
