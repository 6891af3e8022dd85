// snap2p in the browser: the npm package's `browser` entry (node/package.json, exports
// condition "browser"). The protocol runs in the core, compiled to WebAssembly
// (snap2p_browser.js / _bg.wasm, made by browser/build.sh); this file does the page's I/O:
// a binary WebSocket carries the session's bytes (docs/PROTOCOL.md §15), setTimeout arms the
// machine's one timer, and streams are WHATWG ReadableStream / WritableStream. A browser
// peer dials; it does not listen.

import init, * as core from './snap2p_browser.js';

await init();

/** Every code of the core's one error taxonomy, by name (`ERR_NOT_ALLOWED: 4`, …). */
export const ErrorCode = Object.freeze(
  Object.fromEntries(core.errorCodes().map((c) => [c.name, c.code])),
);
const CODE_NAMES = new Map(core.errorCodes().map((c) => [c.code, c.name]));

/** The `ERR_…` name of a numeric code (`ERR_UNKNOWN_CODE` if unknown). */
export function errorName(code) {
  return CODE_NAMES.get(code) ?? 'ERR_UNKNOWN_CODE';
}

/** An error raised by snap2p: `code` is the core's number, `name` its `ERR_…` name. */
export class Snap2pError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.code = code;
    this.name = errorName(code);
  }
}

/** Turns what the core threw (a JS Error with `code`) into a Snap2pError. */
function fromCore(e) {
  if (e instanceof Snap2pError) return e;
  if (e && Number.isInteger(e.code)) return new Snap2pError(e.code, e.message);
  return new Snap2pError(ErrorCode.ERR_INTERNAL, String(e?.message ?? e), { cause: e });
}

/** `stacks:<address>` of `stacks:SP…` or a bare `SP…` address; throws code 25. */
export function formatPrincipal(principal) {
  try {
    return core.formatPrincipal(principal);
  } catch (e) {
    throw fromCore(e);
  }
}

/**
 * A wallet's `stx_signMessage` signature of `message` (bytes) in the wire form
 * r ‖ s ‖ v, v 0..3, when it is `principal`'s: wallets send r ‖ s ‖ v or v ‖ r ‖ s, with
 * v a recovery id or a bitcoin-style header (27..34). Throws code 6 (ERR_AUTH_INVALID)
 * otherwise. Attaching a signature applies it already; this is for pages that check one.
 */
export function normalizeWalletSignature(message, principal, signature) {
  try {
    return core.normalizeWalletSignature(message, principal, signature);
  } catch (e) {
    throw fromCore(e);
  }
}

/** `relay+ws://…/SP…`: how `principal` is reached through the relay at `relay` (`ws://…`). */
export function relayLocator(relay, principal) {
  try {
    return core.relayLocator(relay, principal);
  } catch (e) {
    throw fromCore(e);
  }
}

/** The Node package's `on` / `once` / `off` / `emit`, for pages (no node:events here). */
class Emitter {
  #handlers = new Map();
  on(event, fn) {
    if (!this.#handlers.has(event)) this.#handlers.set(event, []);
    this.#handlers.get(event).push(fn);
    return this;
  }
  once(event, fn) {
    const wrapped = (...args) => {
      this.off(event, wrapped);
      fn(...args);
    };
    return this.on(event, wrapped);
  }
  off(event, fn) {
    const list = this.#handlers.get(event);
    if (list) this.#handlers.set(event, list.filter((f) => f !== fn));
    return this;
  }
  emit(event, ...args) {
    const list = this.#handlers.get(event);
    if (!list || list.length === 0) return false;
    for (const fn of [...list]) fn(...args);
    return true;
  }
}

// ---------------------------------------------------------------------------------------
// Signers

const hexToBytes = (hex) => {
  const h = hex.startsWith('0x') ? hex.slice(2) : hex;
  if (h.length % 2 !== 0 || /[^0-9a-fA-F]/.test(h)) {
    throw new Snap2pError(ErrorCode.ERR_WALLET, 'wallet returned a signature that is not hex');
  }
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
};
const bytesToHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/**
 * An in-memory Stacks key as a host signer (demos, tests): `KeySigner.generate()` or
 * `KeySigner.fromMnemonic(phrase)`. Its `form` is `message` (what wallets sign).
 */
export class KeySigner {
  #key;
  form = 'message';
  constructor(key) {
    this.#key = key;
  }
  static generate(network = 'mainnet') {
    return new KeySigner(core.KeySigner.generate(network));
  }
  static fromMnemonic(phrase, { account = 0, network = 'mainnet' } = {}) {
    try {
      return new KeySigner(core.KeySigner.fromMnemonic(phrase, account, network));
    } catch (e) {
      throw fromCore(e);
    }
  }
  get principal() {
    return this.#key.principal;
  }
  get mnemonic() {
    return this.#key.mnemonic;
  }
  get publicKey() {
    return this.#key.publicKey;
  }
  /** 65-byte r ‖ s ‖ v over the Stacks-prefixed message. */
  signMessage(message) {
    return this.#key.signMessage(message);
  }
  sign(request) {
    return request.kind === 'message'
      ? this.#key.signMessage(request.message)
      : this.#key.signDigest(request.digest);
  }
}

/**
 * A Stacks wallet's message signing as a host signer. `request` is what `@stacks/connect`
 * exports (`request(method, params)`, resolving to the result) or a SIP-030 provider
 * (`window.LeatherProvider`, `window.XverseProviders.StacksProvider`: `provider.request(
 * method, params)`, resolving to `{result}` or `{error}`). It is asked
 * `stx_signMessage` with `{message, publicKey?}` and answers `{signature, publicKey}`
 * (hex; r ‖ s ‖ v, or v ‖ r ‖ s as older wallets send it, v a recovery id 0..3 or a
 * bitcoin-style header 27..34). The attestation then carries
 * signature form `message` (docs/PROTOCOL.md Part II, §18).
 */
export function walletSigner({ principal, request, provider, publicKey } = {}) {
  const call = request ?? (provider && ((m, p) => provider.request(m, p)));
  if (typeof call !== 'function') {
    throw new Snap2pError(ErrorCode.ERR_INVALID_ARGUMENT, 'walletSigner needs `request` or `provider`');
  }
  return {
    principal: formatPrincipal(principal),
    form: 'message',
    async sign(req) {
      if (req.kind !== 'message') {
        throw new Snap2pError(ErrorCode.ERR_WALLET, 'a wallet signs messages, not digests');
      }
      const params = publicKey ? { message: req.message, publicKey } : { message: req.message };
      let answer;
      try {
        answer = await call('stx_signMessage', params);
      } catch (e) {
        throw new Snap2pError(ErrorCode.ERR_WALLET, `wallet refused: ${e?.message ?? e}`, { cause: e });
      }
      if (answer && answer.error) {
        throw new Snap2pError(ErrorCode.ERR_WALLET, `wallet refused: ${answer.error.message ?? JSON.stringify(answer.error)}`);
      }
      const result = answer && answer.result ? answer.result : answer;
      if (!result || typeof result.signature !== 'string') {
        throw new Snap2pError(ErrorCode.ERR_WALLET, 'wallet answer has no signature');
      }
      const sig = hexToBytes(result.signature);
      if (sig.length !== 65) {
        throw new Snap2pError(ErrorCode.ERR_WALLET, `wallet signature is ${sig.length} bytes, not 65`);
      }
      // As the wallet sent it: the core takes r ‖ s ‖ v and v ‖ r ‖ s, v a recovery id
      // (0..3) or a bitcoin-style header (27..34), and keeps the layout that recovers the
      // principal (identity::normalize_wallet_signature).
      return sig;
    },
  };
}

// ---------------------------------------------------------------------------------------
// Peer, Connection, Stream

/** Asks a host signer for a signature (ERR_WALLET when it fails); 65 bytes. */
async function signWith(signer, req) {
  let sig;
  try {
    sig = await signer.sign(req);
  } catch (e) {
    if (e instanceof Snap2pError) throw e;
    throw new Snap2pError(ErrorCode.ERR_WALLET, `signer failed: ${e?.message ?? e}`, { cause: e });
  }
  return sig instanceof Uint8Array ? sig : Uint8Array.from(sig);
}

const READ_CHUNK = 65536;
/** The stream label of RELAY-1 (docs/PROTOCOL.md §32). */
const RELAY_LABEL = 'relay-1';
/** WebSocket send buffer above which the session stops producing output (backpressure). */
const WS_HIGH_WATER = 1 << 20;

/** A snap2p node in a page. `Peer.create({signer})` signs its node key with the wallet. */
export class Peer extends Emitter {
  #node;
  #conns = new Set();
  #closed = false;
  #opts;
  constructor(node, opts) {
    super();
    this.#node = node;
    this.#opts = opts;
  }

  /**
   * `signer`: a host signer (`{principal, form?, sign(request)}`: `walletSigner(…)`,
   * `KeySigner`, or your own); default a throw-away `KeySigner`. `networks`: which
   * networks remote principals may be on (`any`).
   */
  static async create({
    signer,
    networks = 'any',
    attestationTtlSecs = 86400,
    connectTimeoutMs = 10000,
    alias,
    displayName = '',
  } = {}) {
    signer = signer ?? KeySigner.generate();
    let node;
    try {
      node = new core.Node(signer.principal, signer.form ?? 'digest', attestationTtlSecs);
    } catch (e) {
      throw fromCore(e);
    }
    const sig = await signWith(signer, node.signRequest());
    try {
      node.attachSignature(sig);
    } catch (e) {
      throw fromCore(e);
    }
    const peer = new Peer(node, { networks, connectTimeoutMs, signer });
    if (alias !== undefined) await peer.setAlias(alias, displayName);
    return peer;
  }

  /**
   * Signs an AliasCard with the signer (a second wallet request) and sends it after AUTH
   * on every session dialed from now on, as native peers do (docs/PROTOCOL.md Part II).
   * The alias is normalised by the core (ERR_INVALID_ARGUMENT when it cannot be).
   */
  async setAlias(alias, displayName = '', { ttlSecs = 7 * 86400 } = {}) {
    let req;
    try {
      req = this.#node.aliasRequest(alias, displayName, ttlSecs);
    } catch (e) {
      throw fromCore(e);
    }
    const sig = await signWith(this.#opts.signer, req);
    try {
      return this.#node.attachAliasSignature(sig);
    } catch (e) {
      throw fromCore(e);
    }
  }

  /** Our AliasCard (`{principal, alias, displayName, issuedAt, expiresAt}`), if set. */
  get alias() {
    return this.#node.alias() ?? null;
  }

  get principal() {
    return this.#node.principal;
  }
  get nodePublicKey() {
    return this.#node.nodePublicKey;
  }
  get closed() {
    return this.#closed;
  }
  connections() {
    return [...this.#conns];
  }

  /**
   * Dials `ws://host:port[/path]` or `wss://…`, or a peer behind NAT through a relay's
   * WebSocket listener: `relay+ws://host:port[/path]/SP…` (or `relay+wss://…`), or the
   * principal with `{relay: 'ws://host:port[/path]'}` (docs/PROTOCOL.md §32). Resolves once
   * both sides authenticated. `invite`: hex token of a stealth listener; `expect`: the
   * principal it must be (through a relay: the one dialed, unless given). `splice`
   * (relays, default true): let the relay move the circuit to a second WebSocket (§32.3);
   * false keeps it on a stream of the session with the relay.
   */
  async dial(target, { invite, expect, networks, connectTimeoutMs, relay, splice = true } = {}) {
    if (this.#closed) throw new Snap2pError(ErrorCode.ERR_CONNECTION_CLOSED, 'peer is closed');
    if (relay !== undefined) {
      try {
        target = core.relayLocator(relay, target);
      } catch (e) {
        throw fromCore(e);
      }
    }
    let url;
    try {
      url = new URL(target);
    } catch {
      throw new Snap2pError(ErrorCode.ERR_INVALID_ARGUMENT, `not a locator: ${target}`);
    }
    const timeoutMs = connectTimeoutMs ?? this.#opts.connectTimeoutMs;
    networks = networks ?? this.#opts.networks;
    if (url.protocol === 'relay+ws:' || url.protocol === 'relay+wss:') {
      return this.#dialRelay(target, { invite, expect, networks, timeoutMs, splice });
    }
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
      throw new Snap2pError(
        ErrorCode.ERR_INVALID_ARGUMENT,
        `a browser peer dials ws://, wss://, relay+ws:// and relay+wss:// only, not ${url.protocol}//`,
      );
    }
    // The core offers hs2 (docs/PROTOCOL.md §5.8) to a locator it does not remember as v1
    // only; a listener that closed on the offer is dialed once more, which the core makes v1.
    const conn = this.#connection(target, invite, expect, networks, target);
    try {
      await conn._start({ url: target, timeoutMs });
      return conn;
    } catch (e) {
      if (!conn._fallBackToV1()) throw e;
    }
    const v1 = this.#connection(target, invite, expect, networks, target);
    await v1._start({ url: target, timeoutMs });
    return v1;
  }

  /** A dialing session; `locator`: a direct dial's (hs2 unless remembered v1 only), else v1. */
  #connection(target, invite, expect, networks, locator = undefined) {
    let session;
    try {
      session = this.#node.dial(invite ?? undefined, expect ?? undefined, networks, locator);
    } catch (e) {
      throw fromCore(e);
    }
    const conn = new Connection(this, session, target);
    this.#conns.add(conn);
    conn.once('close', () => this.#conns.delete(conn));
    return conn;
  }

  /**
   * A circuit through a relay (§32.2): a session with the relay (reused when one is open),
   * CONNECT on a `relay-1` stream (written and answered by the core), then the
   * end-to-end session on a spliced WebSocket to the relay or on the stream itself.
   */
  async #dialRelay(locator, { invite, expect, networks, timeoutMs, splice }) {
    let info;
    let req;
    try {
      info = core.parseRelayLocator(locator);
      if (info.target === null) {
        throw new Snap2pError(
          ErrorCode.ERR_INVALID_ARGUMENT,
          `relay locator ${locator} names no principal to dial (relay+ws://host:port/SP…)`,
        );
      }
      req = new core.CircuitRequest(info.relay, info.target, splice);
    } catch (e) {
      throw fromCore(e);
    }
    const relayConn =
      [...this.#conns].find((c) => c.target === info.relay && !c.closed && c.remotePrincipal !== null) ??
      (await this.dial(info.relay, { networks, connectTimeoutMs: timeoutMs }));
    const s = relayConn.openStream(RELAY_LABEL);
    let timer;
    const late = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Snap2pError(ErrorCode.ERR_TIMEOUT, `relay ${info.relay} did not answer CONNECT within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    let grant;
    try {
      grant = await Promise.race([
        (async () => {
          await s.write(req.request());
          for (;;) {
            const chunk = await s.read(req.wanted());
            if (chunk === null) throw req.end();
            const g = req.push(chunk);
            if (g !== undefined) return g;
          }
        })(),
        late,
      ]);
    } catch (e) {
      // A refusal: the relay finished its side after its answer; finish ours so the
      // stream ends. No answer in time: reset it.
      if (e.code === ErrorCode.ERR_TIMEOUT) s.reset(ErrorCode.ERR_TIMEOUT);
      else s.finish().catch(() => {});
      throw fromCore(e);
    } finally {
      clearTimeout(timer);
    }
    const conn = this.#connection(locator, invite, expect ?? info.target, networks);
    conn.relay = info.relay;
    if (grant.splice) {
      // Spliced: the stream is done (both halves end), the session goes on a new WebSocket
      // to the relay whose first message is the SPLICE frame with the relay's token.
      await s.finish();
      s.readAll(1024).catch(() => {});
      await conn._start({ url: info.relay, prefix: core.spliceFrame(grant.splice), timeoutMs });
    } else {
      await conn._startOnStream(s);
    }
    return conn;
  }

  /** Closes every connection. */
  async close() {
    this.#closed = true;
    await Promise.all([...this.#conns].map((c) => (c.close(), c.waitClosed())));
    this.emit('close');
  }
}

/** A WebSocket as a session's transport: one binary message per `transmit()`. */
function webSocketIo(ws, pump) {
  let drainTimer = null;
  return {
    ready: () => ws.readyState === WebSocket.OPEN && ws.bufferedAmount < WS_HIGH_WATER,
    send: (bytes) => ws.send(bytes),
    sent() {
      if (ws.readyState === WebSocket.OPEN && ws.bufferedAmount >= WS_HIGH_WATER && drainTimer === null) {
        // WebSocket has no 'drain' event: look again shortly.
        drainTimer = setTimeout(() => {
          drainTimer = null;
          pump();
        }, 2);
      }
    },
    close() {
      if (ws.readyState <= WebSocket.OPEN) setTimeout(() => ws.close(1000), 0);
    },
  };
}

/**
 * A stream of another session as a session's transport (a relay circuit on its stream):
 * one write in flight at a time, so the outer stream's flow control paces this session.
 */
function streamIo(stream, session, pump) {
  let busy = null;
  let done = false;
  return {
    ready: () => busy === null && !done,
    send(bytes) {
      busy = stream.write(bytes).then(
        () => {
          busy = null;
          pump();
        },
        () => {
          done = true;
          busy = null;
        },
      );
    },
    sent() {},
    close() {
      if (done) return;
      done = true;
      // The session's last frames (ERROR, AUTH_FAIL), then FIN.
      (async () => {
        await busy;
        for (let out; (out = session.transmit()); ) await stream.write(out);
        await stream.finish();
      })().catch(() => {});
    },
  };
}

/** An authenticated session with a remote principal. Emits 'stream' and 'close'. */
export class Connection extends Emitter {
  #session;
  /** The transport: `webSocketIo` or `streamIo`. */
  #io = null;
  #timer = null;
  #timerAt = -1;
  #streams = new Map();
  #accepts = [];
  #dialWaiter = null;
  #closeInfo = null;
  #closeWaiters = [];
  #pumping = false;
  #established = false;
  #startedAt = 0;
  /** Milliseconds from `dial` to authenticated. */
  handshakeMs = null;
  remoteAlias = null;
  /** The relay (`ws://…`) when this session runs through one, else null. */
  relay = null;

  constructor(peer, session, target) {
    super();
    this.peer = peer;
    this.#session = session;
    this.target = target;
  }

  /** Runs the session on a WebSocket to `url`, whose first message is `prefix` if given. */
  _start({ url, prefix, timeoutMs }) {
    this.#startedAt = performance.now();
    return new Promise((resolve, reject) => {
      this.#dialWaiter = { resolve, reject };
      let ws;
      try {
        ws = new WebSocket(url);
      } catch (e) {
        this.#fail(ErrorCode.ERR_INVALID_ARGUMENT, `cannot open ${url}: ${e.message}`);
        return;
      }
      ws.binaryType = 'arraybuffer';
      this.#io = webSocketIo(ws, () => this.#pump());
      let opened = false;
      const connectTimer = setTimeout(() => {
        if (ws.readyState === WebSocket.CONNECTING) {
          this.#fail(ErrorCode.ERR_TIMEOUT, `no WebSocket to ${url} within ${timeoutMs} ms`);
          ws.close();
        }
      }, timeoutMs);
      ws.onopen = () => {
        opened = true;
        clearTimeout(connectTimer);
        if (prefix) ws.send(prefix);
        this.#pump();
      };
      ws.onmessage = (ev) => {
        if (typeof ev.data === 'string') {
          this.#fail(ErrorCode.ERR_INVALID_MESSAGE, 'text WebSocket message');
          ws.close(1003);
          return;
        }
        this.#session.input(new Uint8Array(ev.data));
        this.#pump();
      };
      ws.onerror = () => {};
      ws.onclose = (ev) => {
        clearTimeout(connectTimer);
        if (!this.#session.isClosed()) {
          // A WebSocket that never opened is a failed dial; one that ends is a TCP EOF.
          if (ev.code === 1006 && !this.#established && !opened) {
            this.#session.transportClosed(ErrorCode.ERR_CONNECTION_CLOSED, `cannot connect to ${url}`);
          } else {
            this.#session.transportClosed(undefined, undefined);
          }
        }
        this.#pump();
      };
    });
  }

  /**
   * Runs the session on `stream` of another connection (a relay circuit that stays on its
   * `relay-1` stream, §32.2): the stream's bytes are the session's transport.
   */
  _startOnStream(stream) {
    this.#startedAt = performance.now();
    return new Promise((resolve, reject) => {
      this.#dialWaiter = { resolve, reject };
      this.#io = streamIo(stream, this.#session, () => this.#pump());
      this.#pump();
      (async () => {
        try {
          for (let c; (c = await stream.read()) !== null; ) {
            this.#session.input(c);
            this.#pump();
          }
          if (!this.#session.isClosed()) this.#session.transportClosed(undefined, undefined);
        } catch (e) {
          if (!this.#session.isClosed()) {
            this.#session.transportClosed(e.code || ErrorCode.ERR_CONNECTION_CLOSED, `relay stream: ${e.message}`);
          }
        }
        this.#pump();
      })();
    });
  }

  /** After a failed dial: whether to dial once more (the core then makes it v1, §5.8). */
  _fallBackToV1() {
    return this.#session.fallBackToV1();
  }

  #fail(code, message) {
    if (!this.#session.isClosed()) this.#session.transportClosed(code, message);
    this.#pump();
  }

  /** Moves bytes and events: output to the transport, events to their waiters, the timer. */
  #pump() {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (;;) {
        let moved = false;
        const io = this.#io;
        if (io) {
          while (io.ready()) {
            const out = this.#session.transmit();
            if (!out) break;
            io.send(out);
            moved = true;
          }
          io.sent();
        }
        for (let ev; (ev = this.#session.pollEvent()) !== undefined; ) {
          moved = true;
          this.#onEvent(ev);
        }
        if (!moved) break;
      }
      this.#arm();
      if (this.#session.isClosed() && !this.#closeInfo) this.#finish();
    } finally {
      this.#pumping = false;
    }
  }

  #arm() {
    const ms = this.#session.isClosed() ? -1 : this.#session.timeoutMs();
    if (ms < 0) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = null;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#session.onTimeout();
      this.#pump();
    }, Math.ceil(ms));
  }

  #onEvent(ev) {
    switch (ev.type) {
      case 'established': {
        this.#established = true;
        this.handshakeMs = performance.now() - this.#startedAt;
        const w = this.#dialWaiter;
        this.#dialWaiter = null;
        w?.resolve();
        break;
      }
      case 'stream_opened': {
        const id = this.#session.acceptStream();
        if (id !== undefined) {
          const s = new Stream(this, id, this.#session.streamLabel(id) ?? null);
          this.#streams.set(id, s);
          const a = this.#accepts.shift();
          if (a) a(s);
          else if (!this.emit('stream', s)) this._pendingStreams.push(s);
        }
        break;
      }
      case 'readable':
      case 'writable':
      case 'stream_reset':
        this.#streams.get(ev.id)?._event(ev);
        break;
      case 'alias':
        this.remoteAlias = ev.alias;
        this.emit('alias', ev.alias);
        break;
      case 'closed':
        this.#finish(ev);
        break;
      default:
        break;
    }
  }
  _pendingStreams = [];

  #finish(ev) {
    if (this.#closeInfo) return;
    const e = ev ?? this.#session.error() ?? { code: 0, message: 'closed' };
    this.#closeInfo = { code: e.code, name: errorName(e.code), message: e.message };
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const err = new Snap2pError(e.code || ErrorCode.ERR_CONNECTION_CLOSED, e.message || 'connection closed');
    if (this.#dialWaiter) {
      const w = this.#dialWaiter;
      this.#dialWaiter = null;
      w.reject(new Snap2pError(e.code || ErrorCode.ERR_CONNECTION_CLOSED, e.message || 'connection closed'));
    }
    for (const s of this.#streams.values()) s._closed(err);
    for (const a of this.#accepts.splice(0)) a(null);
    // The session's last bytes (AUTH_FAIL, ERROR) went out in this pump; then close.
    this.#io?.close();
    for (const w of this.#closeWaiters.splice(0)) w(this.#closeInfo);
    this.emit('close', this.#closeInfo);
  }

  get remotePrincipal() {
    return this.#session.remotePrincipal() ?? null;
  }
  get sessionId() {
    return this.#session.sessionId() ?? null;
  }
  /** Short id: the first 8 bytes of the session id, hex. */
  get id() {
    return this.sessionId?.slice(0, 16) ?? null;
  }
  get closed() {
    return this.#closeInfo !== null;
  }
  get closeReason() {
    return this.#closeInfo;
  }
  supports(capability) {
    return this.#session.remoteCapabilities().includes(capability);
  }
  stats() {
    return this.#session.stats();
  }

  /** Opens a stream (OPEN_STREAM goes out at once; data may follow). */
  openStream(label) {
    let id;
    try {
      id = this.#session.openStream(label ?? undefined);
    } catch (e) {
      throw fromCore(e);
    }
    const s = new Stream(this, id, label ?? null);
    this.#streams.set(id, s);
    this.#pump();
    return s;
  }

  /** The next stream the peer opens (`null` once the connection closed). */
  acceptStream() {
    if (this._pendingStreams.length) return Promise.resolve(this._pendingStreams.shift());
    if (this.#closeInfo) return Promise.resolve(null);
    return new Promise((resolve) => this.#accepts.push(resolve));
  }

  close(code = 0, reason = '') {
    if (this.#closeInfo) return;
    this.#session.close(code, reason);
    this.#pump();
  }

  waitClosed() {
    if (this.#closeInfo) return Promise.resolve(this.#closeInfo);
    return new Promise((resolve) => this.#closeWaiters.push(resolve));
  }

  // The stream calls, for Stream.
  _call(fn) {
    try {
      return fn(this.#session);
    } catch (e) {
      throw fromCore(e);
    } finally {
      this.#pump();
    }
  }
  _forget(id) {
    this.#streams.delete(id);
  }
}

/**
 * A bidirectional byte stream: `readable` (ReadableStream of Uint8Array) and `writable`
 * (WritableStream), whose backpressure is the core's flow control.
 */
export class Stream {
  #conn;
  #readWaiter = null;
  #writeWaiter = null;
  #error = null;
  #released = false;
  #readDone = false;
  #writeDone = false;

  constructor(conn, id, label) {
    this.#conn = conn;
    this.id = id;
    this.label = label;
    this.connection = conn;
    this.readable = new ReadableStream(
      {
        pull: (controller) => this.#pull(controller),
        cancel: () => {
          this.#readDone = true;
          this.#maybeRelease();
        },
      },
      { highWaterMark: 0 },
    );
    this.writable = new WritableStream({
      write: (chunk) => this.#write(chunk),
      close: () => this.#finishWrite(),
      abort: () => this.reset(),
    });
  }

  _event(ev) {
    if (ev.type === 'stream_reset') {
      this.#error = new Snap2pError(ev.code, `stream reset${ev.byPeer ? ' by the peer' : ''}: ${ev.name}`);
    }
    if (ev.type === 'readable' || ev.type === 'stream_reset') {
      const w = this.#readWaiter;
      this.#readWaiter = null;
      w?.();
    }
    if (ev.type === 'writable' || ev.type === 'stream_reset') {
      const w = this.#writeWaiter;
      this.#writeWaiter = null;
      w?.();
    }
  }

  _closed(err) {
    if (!this.#error) this.#error = err;
    for (const k of ['readWaiter', 'writeWaiter']) {
      const w = k === 'readWaiter' ? this.#readWaiter : this.#writeWaiter;
      if (k === 'readWaiter') this.#readWaiter = null;
      else this.#writeWaiter = null;
      w?.();
    }
  }

  /** Reads the next chunk: a Uint8Array, or `null` once the peer finished. */
  async read(max = READ_CHUNK) {
    for (;;) {
      const r = this.#conn._call((s) => s.read(this.id, max));
      if (r !== undefined) return r;
      if (this.#error) throw this.#error;
      await new Promise((resolve) => (this.#readWaiter = resolve));
    }
  }

  async #pull(controller) {
    try {
      const chunk = await this.read();
      if (chunk === null) {
        this.#readDone = true;
        controller.close();
        this.#maybeRelease();
      } else {
        controller.enqueue(chunk);
      }
    } catch (e) {
      this.#readDone = true;
      controller.error(e);
      this.#maybeRelease();
    }
  }

  /** Resolves once the core took all of `data` (string: UTF-8). */
  async write(data) {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    let off = 0;
    while (off < bytes.length) {
      const n = this.#conn._call((s) => s.write(this.id, bytes.subarray(off)));
      off += n;
      if (off < bytes.length) {
        if (this.#error) throw this.#error;
        if (n === 0) await new Promise((resolve) => (this.#writeWaiter = resolve));
      }
    }
  }

  #write(chunk) {
    return this.write(chunk);
  }

  /** Half-closes this direction: FIN after the queued data. */
  async finish() {
    if (this.#writeDone) return;
    this.#writeDone = true;
    this.#conn._call((s) => s.finish(this.id));
    this.#maybeRelease();
  }

  #finishWrite() {
    return this.finish();
  }

  /** Aborts both directions, telling the peer `code` (default ERR_UNSPECIFIED). */
  reset(code = ErrorCode.ERR_UNSPECIFIED) {
    if (this.#conn.closed) return;
    try {
      this.#conn._call((s) => s.reset(this.id, code));
    } catch {
      // already gone
    }
    this.#readDone = this.#writeDone = true;
    this.#maybeRelease();
  }

  /** Reads until the peer finishes (rejects with ERR_RESOURCE_EXHAUSTED past `limit`). */
  async readAll(limit = 64 * 1024 * 1024) {
    const parts = [];
    let total = 0;
    for (let c; (c = await this.read()) !== null; ) {
      total += c.length;
      if (total > limit) {
        this.reset(ErrorCode.ERR_RESOURCE_EXHAUSTED);
        throw new Snap2pError(ErrorCode.ERR_RESOURCE_EXHAUSTED, `stream longer than ${limit} bytes`);
      }
      parts.push(c);
    }
    this.#readDone = true;
    this.#maybeRelease();
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  /** Writes all of `data`, then finishes. */
  async writeAll(data) {
    await this.write(data);
    await this.finish();
  }

  #maybeRelease() {
    if (this.#released || !this.#readDone || !this.#writeDone) return;
    this.#released = true;
    try {
      this.#conn._call((s) => s.release(this.id));
    } catch {
      // the session ended
    }
    this.#conn._forget(this.id);
  }
}

export { bytesToHex };
