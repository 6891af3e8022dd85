// Types of the `snap2p` package's browser entry (browser/js/index.js): what bundlers pick
// through the "browser" export condition. A browser peer dials ws:// and wss:// (and
// peers behind NAT through a relay's WebSocket listener); it does not listen.

/** Every error code of the protocol's one taxonomy, by name (from the core at load). */
export declare const ErrorCode: Readonly<Record<string, number>> & {
  readonly OK: 0;
  readonly ERR_NOT_ALLOWED: 4;
  readonly ERR_INVITE_INVALID: 5;
  readonly ERR_AUTH_INVALID: 6;
  readonly ERR_CONNECTION_CLOSED: 12;
  readonly ERR_TIMEOUT: 13;
  readonly ERR_INVITE_REQUIRED: 18;
  readonly ERR_PRINCIPAL_MISMATCH: 23;
  readonly ERR_WALLET: 24;
  readonly ERR_INVALID_ARGUMENT: 25;
};
export declare function errorName(code: number): string;
export declare class Snap2pError extends Error {
  code: number;
  name: string;
  constructor(code: number, message: string, options?: { cause?: unknown });
}
export interface ErrorInfo {
  code: number;
  name: string;
  message: string;
}
export declare function formatPrincipal(principal: string): string;
export declare function bytesToHex(bytes: Uint8Array): string;
/**
 * A wallet's signature of `message` in the wire form r ‖ s ‖ v (v 0..3) when it is
 * `principal`'s (r ‖ s ‖ v or v ‖ r ‖ s, v a recovery id or a header 27..34); else throws
 * ERR_AUTH_INVALID (6).
 */
export declare function normalizeWalletSignature(message: string, principal: string, signature: Uint8Array): Uint8Array;
/** `relay+ws://…/SP…`: `principal` through the relay listening on `relay` (`ws://…`). */
export declare function relayLocator(relay: string, principal: string): string;

export type SignRequest =
  | { kind: 'digest'; digest: Uint8Array }
  | { kind: 'message'; message: string };
/** What `Peer.create` signs its node key with (the Node package's HostSigner). */
export interface HostSigner {
  principal: string;
  form?: 'digest' | 'message';
  sign(request: SignRequest): Promise<Uint8Array> | Uint8Array;
}

/** An in-memory Stacks key (demos and tests). */
export declare class KeySigner implements HostSigner {
  static generate(network?: 'mainnet' | 'testnet'): KeySigner;
  static fromMnemonic(
    phrase: string,
    options?: { account?: number; network?: 'mainnet' | 'testnet' },
  ): KeySigner;
  readonly principal: string;
  readonly mnemonic: string;
  readonly publicKey: string;
  form: 'message';
  signMessage(message: string): Uint8Array;
  sign(request: SignRequest): Uint8Array;
}

/** `@stacks/connect`'s `request`, or a SIP-030 provider (`window.LeatherProvider`, …). */
export interface WalletSignerOptions {
  principal: string;
  request?: (method: 'stx_signMessage', params: { message: string; publicKey?: string }) => Promise<unknown>;
  provider?: { request(method: string, params: unknown): Promise<unknown> };
  publicKey?: string;
}
export declare function walletSigner(options: WalletSignerOptions): HostSigner;

export interface PeerOptions {
  signer?: HostSigner;
  networks?: 'any' | 'mainnet' | 'testnet';
  attestationTtlSecs?: number;
  connectTimeoutMs?: number;
  /** Our alias: an AliasCard signed by the signer (a second request), sent after AUTH. */
  alias?: string;
  displayName?: string;
}
export interface DialOptions {
  /** Hex invite token of a stealth listener. */
  invite?: string;
  /** The principal the listener must authenticate as (else ERR_PRINCIPAL_MISMATCH). */
  expect?: string;
  networks?: 'any' | 'mainnet' | 'testnet';
  connectTimeoutMs?: number;
  /** The relay (`ws://…` or `wss://…`) through which `target`, a principal, is dialed. */
  relay?: string;
  /** Through a relay: let it splice the circuit onto a second WebSocket (default true). */
  splice?: boolean;
}
export interface AliasCard {
  principal: string;
  alias: string;
  displayName: string;
  issuedAt: number;
  expiresAt: number;
}

export declare class Peer {
  static create(options?: PeerOptions): Promise<Peer>;
  readonly principal: string;
  readonly nodePublicKey: Uint8Array;
  readonly closed: boolean;
  /** Our AliasCard, once set. */
  readonly alias: AliasCard | null;
  connections(): Connection[];
  /** Signs (through the signer) and publishes our AliasCard for sessions dialed from now on. */
  setAlias(alias: string, displayName?: string, options?: { ttlSecs?: number }): Promise<AliasCard>;
  /**
   * Dials `ws://host:port[/path]` or `wss://…`, or through a relay `relay+ws://host:port[/path]/SP…`
   * (or a principal with `{relay}`); resolves once both sides authenticated.
   */
  dial(target: string, options?: DialOptions): Promise<Connection>;
  close(): Promise<void>;
  on(event: 'close', listener: () => void): this;
  once(event: string, listener: (...args: any[]) => void): this;
  off(event: string, listener: (...args: any[]) => void): this;
}

export declare class Connection {
  readonly peer: Peer;
  readonly target: string;
  readonly remotePrincipal: string | null;
  readonly remoteAlias: AliasCard | null;
  readonly sessionId: string | null;
  readonly id: string | null;
  readonly closed: boolean;
  readonly closeReason: ErrorInfo | null;
  /** Milliseconds from `dial` to authenticated. */
  readonly handshakeMs: number | null;
  /** The relay (`ws://…`) this session runs through, or null. */
  readonly relay: string | null;
  supports(capability: string): boolean;
  stats(): { framesSent: number; framesReceived: number; streamsOpened: number; openStreams: number; rttMs: number | null };
  openStream(label?: string): Stream;
  acceptStream(): Promise<Stream | null>;
  close(code?: number, reason?: string): void;
  waitClosed(): Promise<ErrorInfo>;
  on(event: 'stream', listener: (stream: Stream) => void): this;
  on(event: 'close', listener: (info: ErrorInfo) => void): this;
  on(event: 'alias', listener: (card: AliasCard) => void): this;
  once(event: string, listener: (...args: any[]) => void): this;
  off(event: string, listener: (...args: any[]) => void): this;
}

export declare class Stream {
  readonly id: number;
  readonly label: string | null;
  readonly connection: Connection;
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array | string>;
  read(max?: number): Promise<Uint8Array | null>;
  write(data: Uint8Array | string): Promise<void>;
  finish(): Promise<void>;
  reset(code?: number): void;
  readAll(limit?: number): Promise<Uint8Array>;
  writeAll(data: Uint8Array | string): Promise<void>;
}
