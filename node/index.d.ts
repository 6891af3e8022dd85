/// <reference types="node" />
// Types of the `snap2p` package (index.js). Kept in step with the runtime by
// test/types.test.js (exported names) and test/types/usage.ts (compiled with tsc).

import { EventEmitter } from 'node:events';
import { Duplex, DuplexOptions } from 'node:stream';

/** Every error code of the protocol's one taxonomy, by name. */
export declare const ErrorCode: Readonly<{
  OK: 0;
  ERR_UNSPECIFIED: 1;
  ERR_VERSION_UNSUPPORTED: 2;
  ERR_AUTH_FAILED: 3;
  ERR_NOT_ALLOWED: 4;
  ERR_INVITE_INVALID: 5;
  ERR_AUTH_INVALID: 6;
  ERR_AUTH_EXPIRED: 7;
  ERR_HANDSHAKE_FAILED: 8;
  ERR_STREAM_ID_IN_USE: 9;
  ERR_STREAM_NOT_FOUND: 10;
  ERR_STREAM_CLOSED: 11;
  ERR_CONNECTION_CLOSED: 12;
  ERR_TIMEOUT: 13;
  ERR_MESSAGE_TOO_LARGE: 14;
  ERR_INVALID_MESSAGE: 15;
  ERR_RESOURCE_EXHAUSTED: 16;
  ERR_INTERNAL: 17;
  ERR_INVITE_REQUIRED: 18;
  ERR_RATE_LIMITED: 19;
  ERR_STREAM_REFUSED: 20;
  ERR_NOT_FOUND: 21;
  ERR_ALL_LOCATORS_FAILED: 22;
  ERR_PRINCIPAL_MISMATCH: 23;
  ERR_WALLET: 24;
  ERR_INVALID_ARGUMENT: 25;
  ERR_PROVIDERS_DISAGREE: 26;
}>;

/** The `ERR_…` name of a numeric code (`ERR_UNKNOWN_CODE` if unknown). */
export declare function errorName(code: number): string;

/** An error raised by snap2p. */
export declare class Snap2pError extends Error {
  /** The protocol's numeric error code (see `ErrorCode`). */
  code: number;
  /** The code's name, e.g. `ERR_NOT_ALLOWED`. */
  name: string;
  constructor(code: number, message: string, options?: { cause?: unknown });
}

/** Why a connection ended. */
export interface ErrorInfo {
  code: number;
  name: string;
  message: string;
}

/** The parts of a Stacks principal. */
export interface PrincipalInfo {
  /** Canonical `stacks:<address>`. */
  principal: string;
  address: string;
  version: number;
  hash160: Buffer;
  network: Network;
  singleSig: boolean;
}

export type Network = 'mainnet' | 'testnet';
export type Visibility = 'public' | 'private' | 'stealth';

/** `stacks:<address>` of `stacks:SP…` or a bare `SP…` address; throws ERR_INVALID_ARGUMENT. */
export declare function formatPrincipal(principal: string): string;
/** Strictly parses `stacks:<address>`. */
export declare function parsePrincipal(principal: string): PrincipalInfo;
export declare function principalFromParts(version: number, hash160: Uint8Array): PrincipalInfo;
export declare function c32Encode(data: Uint8Array): string;
export declare function c32Decode(text: string): Buffer;
/** SHA-256 of the Stacks signed-message prefix and `message`. */
export declare function stacksMessageHash(message: string): Buffer;
export declare function normalizeAlias(alias: string): string;
/** The `stacks:` principal whose key made `signature` (65 bytes) over `digest` (32 bytes). */
export declare function recoverPrincipal(
  digest: Uint8Array,
  signature: Uint8Array,
  network?: Network,
): string;

/** What a host signer is asked to sign. */
export type SignRequest =
  | { kind: 'digest'; digest: Buffer }
  | { kind: 'message'; message: string };

/**
 * A wallet that signs outside this process (browser extension bridge, hardware wallet).
 * `sign` resolves to a 65-byte recoverable signature r ‖ s ‖ v. With `form: 'message'`
 * it is asked to sign texts as a wallet "sign message" (Stacks prefix applied by it).
 */
export interface HostSigner {
  principal: string;
  form?: 'digest' | 'message';
  sign(request: SignRequest): Promise<Uint8Array> | Uint8Array;
}

export interface PeerOptions {
  /** A wallet to sign with (default: a fresh throw-away wallet). */
  wallet?: Wallet;
  /** A host-side signer to sign with. */
  signer?: HostSigner;
  visibility?: Visibility;
  /**
   * `'ts'`: speak the TypeScript SNaP2P implementation's wire for `listen` and `dial`
   * (docs/PROTOCOL.md §12; a listener speaks one profile); `'standard'` (default).
   */
  compat?: 'ts' | 'standard';
  /** Principals let in by Private and Stealth peers. */
  allowlist?: string[];
  allowlistGate?: boolean;
  /** Networks remote principals may be on (default `any`). */
  networks?: 'any' | 'mainnet' | 'testnet';
  /** Network of the throw-away wallet (default `mainnet`). */
  network?: Network;
  alias?: string;
  displayName?: string;
  /** PX-1 peer exchange (default: on for Public peers). */
  px1?: boolean;
  /**
   * The two-round-trip handshake (docs/PROTOCOL.md §5.8; default on): dials offer it and
   * listeners accept an offer; a listener that closes silently on the offer (a v1 node) is
   * dialed again at once with v1. `false`: v1 only.
   */
  hs2?: boolean;
  attestationTtlSecs?: number;
  preauthRatePerMin?: number;
  connectTimeoutMs?: number;
  /** Rekey a sending key after this many bytes sealed (0: never by bytes; default 2^30). */
  rekeyAfterBytes?: number;
  /** … or after this many frames (0: never by frames; default 100,000). */
  rekeyAfterFrames?: number;
  /** … or once the key is this many seconds old and sealed a frame (0: never; default 3600). */
  rekeyIntervalSecs?: number;
  /** PEM certificate chain (leaf first) a `wss://` listener presents; with `tlsKeyFile`. */
  tlsCertFile?: string;
  /** PEM private key (PKCS#8, PKCS#1 or SEC1) of `tlsCertFile`. */
  tlsKeyFile?: string;
  /** PEM file of root certificates trusted, besides Mozilla's, when dialing `wss://`. */
  tlsRootFile?: string;
  /**
   * Locators others reach this peer on that are not its listeners' own (a `wss://` name
   * served by a reverse proxy in front of a `ws://` listener, a port forwarded by a
   * router); advertised by PX-1 before the listeners' locators. A malformed one: code 25.
   */
  externalLocators?: string[];
  /**
   * Serve as a relay for peers behind NAT (RELAY-1, docs/PROTOCOL.md §32): `true` or an
   * object of limits; absent: do not serve. Using relays needs no option. A bad value: 25.
   */
  relay?: boolean | RelayOptions | null;
  /**
   * The resolver chain of `resolve` and the discovery modules behind its steps
   * (docs/PROTOCOL.md §35.5). A bad value: 25.
   */
  resolver?: ResolverOptions | null;
}

/** A resolver chain step (docs/PROTOCOL.md §35.5). */
export type ResolverStepName = 'cache' | 'px-1' | 'mdns' | 'dht' | 'bns';

/** The resolver chain and its modules; absent fields keep the core's defaults. */
export interface ResolverOptions {
  /** The steps, in order (default: cache, px-1, mdns, dht, bns). */
  steps?: ResolverStepName[];
  /** Timeouts of some steps, milliseconds (`{ dht: 2000 }`). */
  timeoutsMs?: Partial<Record<ResolverStepName, number>>;
  /** Join the Mainline DHT (implied by `dhtBootstrap`). */
  dht?: boolean;
  /** DHT bootstrap nodes, `host:port` (none, with `dht`: the public network's). */
  dhtBootstrap?: string[];
  /** Publish this peer's advert on the DHT (default: when Public; refused when not Public). */
  dhtPublish?: boolean;
  /** File of the durable advert cache (default: memory only). */
  advertCacheFile?: string;
  /** mDNS on the LAN: the `mdns` step; a Public peer announces itself. */
  mdns?: boolean;
  /** Stacks API base URLs BNS names (`alice.btc`) resolve through, every one cross-checked. */
  bnsProviders?: string[];
}

/** One locator `resolve` found. */
export interface ResolvedLocator {
  locator: string;
  /** Listed by a live signed advert of the principal (checked); `false`: a hint AUTH proves. */
  verified: boolean;
}

/** What one step of the chain did. */
export interface ResolveStep {
  name: ResolverStepName | 'bns-name';
  outcome: 'found' | 'not_found' | 'timeout' | 'error' | 'skipped';
  durationMs: number;
  /** Locators found (0 unless `found`). */
  count: number;
  /** Why it failed (`timeout`, `error`). */
  error: ErrorInfo | null;
}

/** What `resolve` found and how (the core's ResolveReport). */
export interface ResolveReport {
  /** `stacks:SP…` (the owner, when a BNS name was resolved). */
  principal: string;
  /** The BNS name resolved first, lower-cased. */
  name: string | null;
  answeredBy: string | null;
  locators: ResolvedLocator[];
  steps: ResolveStep[];
  durationMs: number;
}

/** A signed endpoint advert's fields (docs/PROTOCOL.md §34). */
export interface AdvertInfo {
  principal: string;
  nodeKey: Buffer;
  seq: number;
  issuedAt: number;
  expiresAt: number;
  locators: string[];
  attestation: Buffer;
  signature: Buffer;
  signingInput: Buffer;
  encoded: Buffer;
}
/** Decodes an advert (no verification); ERR_INVALID_MESSAGE / ERR_MESSAGE_TOO_LARGE for bad bytes. */
export declare function decodeAdvert(wire: Uint8Array): AdvertInfo;
/** Verifies an advert at `now`, under the expected node key and principal when given. */
export declare function verifyAdvert(
  wire: Uint8Array,
  now: number,
  expected?: { nodeKey?: Uint8Array | null; principal?: string | null } | null,
): AdvertInfo;
/** Issues an advert signed by the node key of `nodeSeed` carrying `attestation`: its wire bytes. */
export declare function issueAdvert(
  nodeSeed: Uint8Array,
  attestation: Uint8Array,
  fields: { locators: string[]; seq: number; issuedAt: number; ttlSecs: number },
): Buffer;

/** A serving relay's admission and limits; absent fields keep the core's defaults. */
export interface RelayOptions {
  /** Only these principals may hold a reservation (refused with ERR_NOT_ALLOWED); default: any. */
  allowlist?: string[];
  /** Reservations held at once (default 4096; ERR_RESOURCE_EXHAUSTED beyond). */
  maxReservations?: number;
  /** Circuits open at once (default 1024). */
  maxCircuits?: number;
  /** Circuits open at once per principal, as dialer or target (default 16). */
  maxCircuitsPerPeer?: number;
  /** Bytes one circuit may carry, both directions (0: no limit; default 2^30). */
  circuitMaxBytes?: number;
  /** How long one circuit may stay open, seconds (default 3600). */
  circuitMaxDurationSecs?: number;
  /** RESERVE and CONNECT requests per principal per minute (0: no limit; default 60). */
  requestsPerMin?: number;
}

/** A reservation this peer keeps on a relay (`listen('relay://host:port')`). */
export interface ReservationInfo {
  /** The relay, `relay://host:port`. */
  relay: string;
  /** Whether the reservation's session is up now. */
  active: boolean;
  /** This peer's `ip:port` as the relay sees it (what a hole punch aims at), or `null`. */
  observed: string | null;
}

/** What this peer serves as a relay now (all 0 unless it serves). */
export interface RelayStats {
  /** Reservations held now. */
  reservations: number;
  /** Circuits open now. */
  circuits: number;
  /** Circuits opened since the peer started. */
  circuitsTotal: number;
  /** Of those, circuits spliced onto plain connections to the relay (PROTOCOL.md §32.3). */
  splicedTotal: number;
  /** Bytes spliced through circuits, both directions. */
  bytesForwarded: number;
  /** Requests refused (admission, limits, rate). */
  refused: number;
}

/** What happened (docs/EVENTS.md); the same names in every language. */
export type EventKind =
  | 'session_established'
  | 'session_closed'
  | 'handshake_failed'
  | 'inbound_refused'
  | 'dial_retry'
  | 'stream_opened'
  | 'stream_refused'
  | 'stream_reset'
  | 'keepalive_timeout'
  | 'px1_query'
  | 'rate_limited'
  | 'lagged';

/** One event of `peer.events()`. `kind` says which of the optional fields are set. */
export interface PeerEvent {
  kind: EventKind;
  /** Wall-clock time of the event. */
  at: Date;
  /** `conn.id` of the session concerned. */
  connection?: string;
  direction?: 'inbound' | 'outbound';
  /** Locator scheme: `tcp`, `ws`, `wss` (`external` for a stream handed to the core). */
  transport?: string;
  /** `ip:port`. */
  remoteAddr?: string;
  /** `stacks:SP…` */
  remotePrincipal?: string;
  /** The protocol's error code (see `ErrorCode`; 0 for a clean close). */
  code?: number;
  reason?: string;
  /**
   * Milliseconds: the handshake (`session_established`), the session's age
   * (`session_closed`), time spent (`handshake_failed`), the pause before the next try
   * (`dial_retry`).
   */
  duration?: number;
  bytesSent?: number;
  bytesReceived?: number;
  /** `lagged`: events this subscriber missed. */
  missed?: number;
  /** The stream concerned (its id within the session) and its label. */
  stream?: number;
  label?: string;
  /** `px1_query`: how many items the answer held. */
  count?: number;
  /** `session_established`: whether the handshake was hs2 (PROTOCOL.md §5.8) or v1. */
  hs2?: boolean;
}

/**
 * A subscription to a peer's events: `for await (const ev of peer.events())`. Leaving the
 * loop or `close()` stops it; closing the peer ends it after its last events.
 */
export declare class EventSubscription implements AsyncIterableIterator<PeerEvent> {
  private constructor(nativeSubscription: unknown);
  next(): Promise<IteratorResult<PeerEvent, undefined>>;
  return(): Promise<IteratorResult<PeerEvent, undefined>>;
  /** Stops the subscription; a waiting `next()` resolves `done`. Idempotent. */
  close(): void;
  readonly closed: boolean;
  [Symbol.asyncIterator](): EventSubscription;
}

/** A peer's counters now (docs/EVENTS.md, "Counters"). */
export interface PeerStats {
  /** Sessions open now. */
  sessionsOpen: number;
  /** Sessions authenticated since the peer started, by direction. */
  sessionsInbound: number;
  sessionsOutbound: number;
  /** Of those, the sessions whose handshake was hs2 (docs/PROTOCOL.md §5.8); the others ran v1. */
  sessionsHs2: number;
  /** Failed handshakes (either direction), by error code. */
  handshakesFailed: Record<number, number>;
  /** Inbound connections turned away before any handshake, by error code. */
  inboundRefused: Record<number, number>;
  /** Inbound connections in admission now. */
  pendingHandshakes: number;
  /** Bytes on the wire of every session since the peer started, open and ended. */
  bytesSent: number;
  bytesReceived: number;
}

/** One session's counters now; times in milliseconds. */
export interface ConnectionStats {
  /** The session's bytes on the wire (framing, Noise tags, control messages included). */
  bytesSent: number;
  bytesReceived: number;
  /** Frames written and read, handshake included. */
  framesSent: number;
  framesReceived: number;
  openStreams: number;
  /** Streams opened since the session began, either side. */
  streamsOpened: number;
  /** Smoothed round-trip time from keepalive (absent until the first PONG). */
  rtt?: number;
  /** First byte to AUTH_OK. */
  handshake?: number;
  /** Whether the handshake was hs2, of two round trips (docs/PROTOCOL.md §5.8), or v1's three. */
  hs2: boolean;
  age: number;
  /** The current path: `tcp`, `ws`, `wss`, `relay` (through a relay), `punch` (hole-punched), … */
  transport: string;
  remoteAddr?: string;
  localAddr?: string;
}

export interface DialOptions {
  /** Invite token (hex) for a stealth listener. */
  invite?: string;
  /** Fail unless the peer authenticates as this principal. */
  expect?: string;
}

export interface Invite {
  /** The token as hex: only filled in by `createInvite`. */
  token: string;
  id: string;
  createdAt: number;
  expiresAt: number;
  oneTime: boolean;
  uses: number;
}

export interface AliasCard {
  principal: string;
  alias: string;
  displayName: string;
  issuedAt: number;
  expiresAt: number;
  /** The signed wire bytes. */
  wire: Buffer;
}

/** A snap2p stream: a Node `Duplex` whose backpressure is the core's flow control. */
export declare class Stream extends Duplex {
  private constructor(nativeStream: unknown, connection: Connection, options?: DuplexOptions);
  readonly id: number;
  readonly label: string | null;
  readonly connection: Connection;
  /** Aborts both directions, telling the peer `code` (default ERR_UNSPECIFIED). */
  reset(code?: number): void;
  /** Resolves once the core accepted all of `data`. */
  writeAll(data: string | Uint8Array): Promise<void>;
  /** Reads until the peer finishes (rejects with ERR_RESOURCE_EXHAUSTED past `limit`). */
  readAll(limit?: number): Promise<Buffer>;
  /**
   * Copies into `buf` (at least 1 byte) what has arrived, up to its length, waiting only
   * while nothing has: the count, or 0 once the peer finished its side. Allocates nothing
   * per read; bytes the Readable side already holds come first.
   */
  readInto(buf: Uint8Array): Promise<number>;
}

/** The stream side of a connection. Emits 'stream' for streams the peer opens. */
export declare class Multiplexer extends EventEmitter {
  private constructor(connection: Connection);
  readonly connection: Connection;
  openStream(label?: string): Stream;
  acceptStream(): Promise<Stream | null>;
  [Symbol.asyncIterator](): AsyncGenerator<Stream, void, undefined>;
  on(event: 'stream', listener: (stream: Stream) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'stream', listener: (stream: Stream) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** An authenticated session with a remote principal. Emits 'close' with an `ErrorInfo`. */
export declare class Connection extends EventEmitter {
  private constructor(nativeConnection: unknown, peer: Peer);
  readonly peer: Peer;
  /** The authenticated `stacks:<address>` of the other side. */
  readonly remotePrincipal: string;
  readonly sessionId: string;
  /** Short id (first 8 bytes of the session id, hex): the `connection` of its events. */
  readonly id: string;
  readonly remoteAddress: string | null;
  readonly localAddress: string | null;
  readonly multiplexer: Multiplexer;
  readonly remoteAlias: AliasCard | null;
  readonly closed: boolean;
  readonly closeReason: ErrorInfo | null;
  supports(capability: string): boolean;
  /** This session's counters now. */
  stats(): ConnectionStats;
  openStream(label?: string): Stream;
  acceptStream(): Promise<Stream | null>;
  /** Presents a PermissionGrant; rejects with the node's code when refused. */
  presentGrant(grant: Buffer | Uint8Array): Promise<void>;
  close(code?: number, reason?: string): void;
  waitClosed(): Promise<ErrorInfo>;
  on(event: 'close', listener: (info: ErrorInfo) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'close', listener: (info: ErrorInfo) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** A snap2p node. Emits 'connection' for authenticated inbound connections. */
export declare class Peer extends EventEmitter {
  private constructor(nativePeer: unknown);
  static create(options?: PeerOptions): Promise<Peer>;
  readonly principal: string;
  readonly nodePublicKey: Buffer;
  readonly visibility: Visibility;
  readonly closed: boolean;
  readonly listenAddrs: string[];
  /** Every listener as a dialable locator: `127.0.0.1:9000`, `ws://…/p`, `wss://…/p`. */
  readonly listenLocators: string[];
  /** Where others reach this peer, as PX-1 advertises it: `externalLocators`, then listeners. */
  readonly reachableLocators: string[];
  readonly allowlist: string[];
  readonly alias: AliasCard | null;
  /**
   * Listens on `port` (all interfaces) or an address string (`ws://…`, `wss://…` too;
   * `relay://host:port` keeps a reservation on that relay); resolves to the bound `ip:port`.
   */
  listen(port: number | string, host?: string): Promise<string>;
  /** Subscribes to this peer's events (one subscription per call). */
  events(): EventSubscription;
  /** This peer's counters now. */
  stats(): PeerStats;
  accept(): Promise<Connection | null>;
  [Symbol.asyncIterator](): AsyncGenerator<Connection, void, undefined>;
  /** Dials `host:port`, `relay://host:port/SP…` (through a relay) or `stacks:<address>` (through PX-1). */
  dial(target: string, options?: DialOptions): Promise<Connection>;
  /**
   * Where a principal or a BNS name can be reached, by the resolver chain; rejects with
   * the core's code when nothing answered (ERR_NOT_FOUND, …) or the name did not resolve
   * (ERR_PROVIDERS_DISAGREE, …). Dials nobody.
   */
  resolve(target: string): Promise<ResolveReport>;
  /** The reservations this peer keeps on relays. */
  relayReservations(): ReservationInfo[];
  /** What this peer serves as a relay now. */
  relayStats(): RelayStats;
  /** Replaces a relayed connection by a direct one (transport `punch`); `conn` stays open. */
  holePunch(conn: Connection): Promise<Connection>;
  connections(): Connection[];
  close(): Promise<void>;
  createInvite(options?: { ttlSecs?: number; oneTime?: boolean }): Invite;
  listInvites(): Invite[];
  revokeInvite(tokenOrId: string): boolean;
  /** Permission rules, one `PRINCIPAL:LABEL[,LABEL] [streams=N] [rate=B]` per line; `null`: none. */
  setPermissions(rules: string | null): void;
  addGrantOwner(principal: string): void;
  revokeGrant(idOrPrincipal: string): void;
  allow(principal: string): void;
  disallow(principal: string): void;
  setAlias(alias: string, displayName?: string): Promise<AliasCard>;
  on(event: 'connection', listener: (connection: Connection) => void): this;
  on(event: 'close', listener: () => void): this;
  on(event: 'error', listener: (error: Snap2pError) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'connection', listener: (connection: Connection) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** A BIP39 wallet in memory. */
export declare class Wallet {
  private constructor(nativeWallet: unknown);
  static generate(network?: Network): Wallet;
  static fromMnemonic(mnemonic: string, options?: { accountIndex?: number; network?: Network }): Wallet;
  readonly principal: string;
  readonly address: string;
  readonly network: Network;
  readonly accountIndex: number;
  readonly publicKey: Buffer;
  mnemonic(): string;
  signDigest(digest: Uint8Array): Buffer;
  signMessage(message: string): Buffer;
  /** Signs a PermissionGrant: `holder` may open `labels` on nodes owned by this wallet. */
  issueGrant(
    holder: string,
    labels: string[],
    options?: { ttlSecs?: number; delegable?: boolean; parent?: Buffer | Uint8Array; form?: 'message' | 'digest' },
  ): Promise<Buffer>;
  /** `issueGrant` with a fixed issue time and nonce (32 bytes): byte-identical re-issue. */
  issueGrantWithNonce(
    holder: string,
    labels: string[],
    options: {
      issuedAt: number;
      nonce: Buffer | Uint8Array;
      ttlSecs?: number;
      delegable?: boolean;
      parent?: Buffer | Uint8Array;
      form?: 'message' | 'digest';
    },
  ): Promise<Buffer>;
}

/** A PermissionGrant's fields and derived bytes (docs/PROTOCOL.md §33). */
export interface GrantInfo {
  /** The grant id (64 hex), what `revokeGrant` takes. */
  id: string;
  version: number;
  issuer: string;
  holder: string;
  labels: string[];
  delegable: boolean;
  /** The parent grant's wire bytes (a delegated grant). */
  parent?: Buffer;
  issuedAt: number;
  expiresAt: number;
  nonce: Buffer;
  form: 'message' | 'digest';
  signature: Buffer;
  signingBytes: Buffer;
  messageText: string;
  signedDigest: Buffer;
  wire: Buffer;
}
/** Signs a PermissionGrant with a host signer (a phone or browser wallet). */
export declare function issueGrantWithSigner(
  signer: HostSigner,
  holder: string,
  labels: string[],
  options?: { ttlSecs?: number; delegable?: boolean; parent?: Buffer | Uint8Array },
): Promise<Buffer>;
/** Decodes a grant (no verification); ERR_AUTH_INVALID for bad bytes. */
export declare function decodeGrant(wire: Uint8Array): GrantInfo;
/** Verifies a grant at `now`: the parent's id for a delegated grant, else null. */
export declare function verifyGrant(wire: Uint8Array, now: number): string | null;
/** A node's decision on a presented grant: the chain's grant ids (parent first). */
export declare function nodeGrantDecision(
  wire: Uint8Array,
  node: { owners: string[]; revoked?: string[]; presenter: string; now: number },
): string[];

export interface WalletInfo {
  id: string;
  name: string;
  address: string;
  principal: string;
  network: Network;
  createdAt: string;
}

/** The encrypted wallet store (the TypeScript implementation's format). */
export declare class WalletStore {
  private constructor(nativeStore: unknown);
  static open(dir?: string, options?: { scryptLogN?: number }): WalletStore;
  readonly dir: string;
  list(): Promise<WalletInfo[]>;
  find(nameOrId: string): Promise<WalletInfo>;
  create(name: string, password: string, options?: { network?: Network }): Promise<Wallet>;
  restore(
    name: string,
    mnemonic: string,
    password: string,
    options?: { network?: Network },
  ): Promise<Wallet>;
  unlock(nameOrId: string, password: string): Promise<Wallet>;
  rename(nameOrId: string, newName: string): Promise<WalletInfo>;
  delete(nameOrId: string): Promise<void>;
  exportMnemonic(nameOrId: string, password: string): Promise<string>;
}
