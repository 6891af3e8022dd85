'use strict';
// The JavaScript face of snap2p: Node idioms (EventEmitter, Duplex streams, Promises,
// async iterators, Error objects with the protocol's `code` and `name`) over the native
// pull-style primitives of the native addon (loader.js). No protocol logic lives here; every decision is the
// Rust core's.

const { EventEmitter } = require('node:events');
const { Duplex } = require('node:stream');

// The addon for this machine: a development build next to this file, else the platform
// package npm installed (loader.js; a clear error naming the package when it is missing).
const native = require('./loader.js').load();

// ---------------------------------------------------------------------------------------
// Errors

/** Every code of the core's one error taxonomy, by name (`ERR_NOT_ALLOWED: 4`, …). */
const ErrorCode = Object.freeze(
  Object.fromEntries(native.errorCodes().map((c) => [c.name, c.code])),
);
const CODE_NAMES = new Map(native.errorCodes().map((c) => [c.code, c.name]));
const INVALID_ARGUMENT = ErrorCode.ERR_INVALID_ARGUMENT;

/** The name (`ERR_…`) of a numeric error code. */
function errorName(code) {
  return CODE_NAMES.get(code) ?? 'ERR_UNKNOWN_CODE';
}

/** An error raised by snap2p: `code` is the protocol's number, `name` its `ERR_…` name. */
class Snap2pError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, 'name', {
      value: errorName(code),
      enumerable: false,
      writable: true,
      configurable: true,
    });
  }
}

// The native side formats errors as `ERR_NAME (code): message` (the core's Display).
const NATIVE_ERROR = /^([A-Z][A-Z0-9_]*) \((\d+)\): ([\s\S]*)$/;
// Statuses napi itself reports when an argument has the wrong JavaScript type.
const NAPI_ARG_STATUSES = new Set([
  'InvalidArg',
  'ObjectExpected',
  'StringExpected',
  'NameExpected',
  'FunctionExpected',
  'NumberExpected',
  'BooleanExpected',
  'ArrayExpected',
  'BigintExpected',
  'DateExpected',
  'ArrayBufferExpected',
  'DetachableArraybufferExpected',
]);

function fromNative(e) {
  if (e instanceof Snap2pError || !(e instanceof Error)) return e;
  const m = NATIVE_ERROR.exec(e.message);
  if (m) return new Snap2pError(Number(m[2]), m[3]);
  if (NAPI_ARG_STATUSES.has(e.code)) return new Snap2pError(INVALID_ARGUMENT, e.message);
  return e;
}

function invalid(message) {
  return new Snap2pError(INVALID_ARGUMENT, message);
}

/** Runs a native call, converting its error. */
function call(fn) {
  try {
    return fn();
  } catch (e) {
    throw fromNative(e);
  }
}

/** Awaits a native Promise, converting its error (also a synchronous throw). */
async function callAsync(fn) {
  try {
    return await fn();
  } catch (e) {
    throw fromNative(e);
  }
}

function expectString(value, what) {
  if (typeof value !== 'string') throw invalid(`${what} must be a string, got ${typeof value}`);
  return value;
}

function optionalString(value, what) {
  return value === undefined || value === null ? undefined : expectString(value, what);
}

function expectObject(value, what) {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object') throw invalid(`${what} must be an object, got ${typeof value}`);
  return value;
}

function expectBytes(value, what) {
  if (!(value instanceof Uint8Array)) throw invalid(`${what} must be a Buffer or Uint8Array`);
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

function rejectUnknownKeys(obj, allowed, what) {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw invalid(`unknown ${what} option ${JSON.stringify(key)}`);
  }
}

// ---------------------------------------------------------------------------------------
// Principals and identity helpers

/**
 * The canonical `stacks:<address>` text of a principal, given as `stacks:SP…` or a bare
 * address (`SP…`). Throws ERR_INVALID_ARGUMENT (25) for anything else.
 */
function formatPrincipal(principal) {
  expectString(principal, 'principal');
  const text = principal.startsWith('stacks:') ? principal : `stacks:${principal}`;
  return call(() => native.parsePrincipalInfo(text)).principal;
}

/** Strictly parses `stacks:<address>` into its parts. */
function parsePrincipal(principal) {
  expectString(principal, 'principal');
  return call(() => native.parsePrincipalInfo(principal));
}

function principalFromParts(version, hash160) {
  if (!Number.isInteger(version)) throw invalid('version must be an integer');
  return call(() => native.principalFromParts(version, expectBytes(hash160, 'hash160')));
}

function c32Encode(data) {
  return call(() => native.c32Encode(expectBytes(data, 'data')));
}

function c32Decode(text) {
  return call(() => native.c32Decode(expectString(text, 'text')));
}

function stacksMessageHash(message) {
  return call(() => native.stacksMessageHash(expectString(message, 'message')));
}

function normalizeAlias(alias) {
  return call(() => native.normalizeAlias(expectString(alias, 'alias')));
}

function recoverPrincipal(digest, signature, network) {
  return call(() =>
    native.recoverPrincipal(
      expectBytes(digest, 'digest'),
      expectBytes(signature, 'signature'),
      optionalString(network, 'network'),
    ),
  );
}

// ---------------------------------------------------------------------------------------
// Wallets

const NATIVE = Symbol('snap2p.native');

/** A BIP39 wallet in memory. */
class Wallet {
  constructor(nativeWallet) {
    if (!(nativeWallet instanceof native.NativeWallet)) {
      throw invalid('use Wallet.generate(), Wallet.fromMnemonic() or WalletStore');
    }
    this[NATIVE] = nativeWallet;
  }

  static generate(network) {
    return new Wallet(call(() => native.NativeWallet.generate(optionalString(network, 'network'))));
  }

  static fromMnemonic(mnemonic, options) {
    const { accountIndex, network } = expectObject(options, 'options');
    if (accountIndex !== undefined && !(Number.isInteger(accountIndex) && accountIndex >= 0)) {
      throw invalid('accountIndex must be a non-negative integer');
    }
    return new Wallet(
      call(() =>
        native.NativeWallet.fromMnemonic(
          expectString(mnemonic, 'mnemonic'),
          accountIndex,
          optionalString(network, 'network'),
        ),
      ),
    );
  }

  get principal() {
    return this[NATIVE].principal;
  }

  get address() {
    return this[NATIVE].address;
  }

  get network() {
    return this[NATIVE].network;
  }

  get accountIndex() {
    return this[NATIVE].accountIndex;
  }

  get publicKey() {
    return this[NATIVE].publicKey;
  }

  mnemonic() {
    return this[NATIVE].mnemonic();
  }

  signDigest(digest) {
    return call(() => this[NATIVE].signDigest(expectBytes(digest, 'digest')));
  }

  signMessage(message) {
    return call(() => this[NATIVE].signMessage(expectString(message, 'message')));
  }

  /**
   * Signs a PermissionGrant: `holder` may open `labels` on nodes owned by this wallet.
   * Options: `ttlSecs`, `delegable`, `parent` (bytes), `form` ('message' | 'digest').
   */
  issueGrant(holder, labels, options = {}) {
    if (!Array.isArray(labels)) throw invalid('labels must be an array of strings');
    const o = options ?? {};
    return callAsync(() =>
      this[NATIVE].issueGrant(
        formatPrincipal(holder),
        labels.map((l) => expectString(l, 'label')),
        o.ttlSecs ?? null,
        o.delegable ?? null,
        o.parent === undefined || o.parent === null ? null : expectBytes(o.parent, 'parent'),
        o.form ?? null,
      ),
    );
  }

  /**
   * `issueGrant` with a fixed issue time and nonce (32 bytes): the same inputs give the
   * same bytes (signatures are deterministic), as the shared vectors check. Options:
   * `issuedAt` and `nonce` (required), `ttlSecs`, `delegable`, `parent`, `form`.
   */
  issueGrantWithNonce(holder, labels, options) {
    if (!Array.isArray(labels)) throw invalid('labels must be an array of strings');
    const o = expectObject(options, 'options');
    if (!Number.isInteger(o.issuedAt)) throw invalid('issuedAt must be an integer (unix seconds)');
    if (!Number.isInteger(o.ttlSecs ?? 0)) throw invalid('ttlSecs must be an integer');
    return callAsync(() =>
      this[NATIVE].issueGrantWithNonce(
        formatPrincipal(holder),
        labels.map((l) => expectString(l, 'label')),
        o.issuedAt,
        o.ttlSecs ?? 24 * 3600,
        expectBytes(o.nonce, 'nonce'),
        o.delegable ?? null,
        o.parent === undefined || o.parent === null ? null : expectBytes(o.parent, 'parent'),
        o.form ?? null,
      ),
    );
  }
}

/**
 * Signs a PermissionGrant with a host signer (`{principal, sign(request), form?}`, as
 * `Peer.create({signer})` takes it: a phone or browser wallet): `holder` may open `labels`
 * on `signer.principal`'s nodes. Options: `ttlSecs`, `delegable`, `parent` (bytes).
 * Resolves with the wire bytes for `conn.presentGrant`.
 */
async function issueGrantWithSigner(signer, holder, labels, options = {}) {
  if (signer === null || (typeof signer !== 'object' && typeof signer !== 'function')) {
    throw invalid('signer must be an object with principal and sign()');
  }
  if (typeof signer.sign !== 'function') throw invalid('signer.sign must be a function');
  if (!Array.isArray(labels)) throw invalid('labels must be an array of strings');
  const o = options ?? {};
  return callAsync(() =>
    native.issueGrantWithSigner(
      formatPrincipal(signer.principal),
      optionalString(signer.form, 'signer.form') ?? null,
      signerCallback(signer),
      formatPrincipal(holder),
      labels.map((l) => expectString(l, 'label')),
      o.ttlSecs ?? null,
      o.delegable ?? null,
      o.parent === undefined || o.parent === null ? null : expectBytes(o.parent, 'parent'),
    ),
  );
}

/** A PermissionGrant's fields and derived bytes (no verification; docs/PROTOCOL.md §33). */
function decodeGrant(wire) {
  return call(() => native.decodeGrant(expectBytes(wire, 'grant')));
}

/**
 * Verifies a grant's signature, times and shape at `now` (unix seconds): the parent
 * grant's id for a delegated grant, else null; a Snap2pError with the core's code if not.
 */
function verifyGrant(wire, now) {
  if (!Number.isInteger(now)) throw invalid('now must be an integer (unix seconds)');
  return call(() => native.verifyGrant(expectBytes(wire, 'grant'), now)) ?? null;
}

/** A signed endpoint advert's fields (no verification; docs/PROTOCOL.md §34). */
function decodeAdvert(wire) {
  return call(() => native.decodeAdvert(expectBytes(wire, 'advert')));
}

/**
 * Verifies an advert at `now` (unix seconds), under `{nodeKey, principal}` when given: its
 * fields, or a Snap2pError with the core's code (the message starts with the reason,
 * `ADV_TAMPERED`, `ADV_EXPIRED`, …).
 */
function verifyAdvert(wire, now, expected = {}) {
  if (!Number.isInteger(now)) throw invalid('now must be an integer (unix seconds)');
  const e = expected ?? {};
  return call(() =>
    native.verifyAdvert(
      expectBytes(wire, 'advert'),
      now,
      e.nodeKey === undefined || e.nodeKey === null ? null : expectBytes(e.nodeKey, 'nodeKey'),
      e.principal === undefined || e.principal === null ? null : formatPrincipal(e.principal),
    ),
  );
}

/**
 * Issues an advert signed by the node key of `nodeSeed` (32 bytes), carrying `attestation`
 * (the wire bytes attesting that key): `{locators, seq, issuedAt, ttlSecs}`. Its wire bytes.
 */
function issueAdvert(nodeSeed, attestation, { locators, seq, issuedAt, ttlSecs }) {
  if (!Array.isArray(locators)) throw invalid('locators must be an array of strings');
  for (const [k, n] of Object.entries({ seq, issuedAt, ttlSecs })) {
    if (!Number.isSafeInteger(n)) throw invalid(`${k} must be an integer`);
  }
  return call(() =>
    native.issueAdvert(
      expectBytes(nodeSeed, 'nodeSeed'),
      expectBytes(attestation, 'attestation'),
      locators.map((l) => expectString(l, 'locator')),
      seq,
      issuedAt,
      ttlSecs,
    ),
  );
}

/**
 * What a node owned by `owners`, holding the `revoked` grant ids or principals, decides when
 * `presenter` presents `wire` at `now`: the chain's grant ids (parent first), or the
 * Snap2pError it refuses with.
 */
function nodeGrantDecision(wire, { owners, revoked = [], presenter, now }) {
  if (!Array.isArray(owners) || !Array.isArray(revoked)) {
    throw invalid('owners and revoked must be arrays of strings');
  }
  if (!Number.isInteger(now)) throw invalid('now must be an integer (unix seconds)');
  return call(() =>
    native.nodeGrantDecision(
      expectBytes(wire, 'grant'),
      owners.map((o) => expectString(o, 'owner')),
      revoked.map((r) => expectString(r, 'revoked')),
      expectString(presenter, 'presenter'),
      now,
    ),
  );
}

/** The encrypted wallet store (`~/.snap2p/wallets` unless `dir` or SNAP2P_WALLET_DIR). */
class WalletStore {
  constructor(nativeStore) {
    if (!(nativeStore instanceof native.NativeWalletStore)) throw invalid('use WalletStore.open()');
    this[NATIVE] = nativeStore;
  }

  static open(dir, options) {
    const { scryptLogN } = expectObject(options, 'options');
    if (scryptLogN !== undefined && !Number.isInteger(scryptLogN)) {
      throw invalid('scryptLogN must be an integer');
    }
    return new WalletStore(
      call(() => native.NativeWalletStore.open(optionalString(dir, 'dir'), scryptLogN)),
    );
  }

  get dir() {
    return this[NATIVE].dir;
  }

  list() {
    return callAsync(() => this[NATIVE].list());
  }

  find(nameOrId) {
    return callAsync(() => this[NATIVE].find(expectString(nameOrId, 'nameOrId')));
  }

  async create(name, password, options) {
    const { network } = expectObject(options, 'options');
    const w = await callAsync(() =>
      this[NATIVE].create(
        expectString(name, 'name'),
        expectString(password, 'password'),
        optionalString(network, 'network'),
      ),
    );
    return new Wallet(w);
  }

  async restore(name, mnemonic, password, options) {
    const { network } = expectObject(options, 'options');
    const w = await callAsync(() =>
      this[NATIVE].restore(
        expectString(name, 'name'),
        expectString(mnemonic, 'mnemonic'),
        expectString(password, 'password'),
        optionalString(network, 'network'),
      ),
    );
    return new Wallet(w);
  }

  async unlock(nameOrId, password) {
    const w = await callAsync(() =>
      this[NATIVE].unlock(expectString(nameOrId, 'nameOrId'), expectString(password, 'password')),
    );
    return new Wallet(w);
  }

  rename(nameOrId, newName) {
    return callAsync(() =>
      this[NATIVE].rename(expectString(nameOrId, 'nameOrId'), expectString(newName, 'newName')),
    );
  }

  delete(nameOrId) {
    return callAsync(() => this[NATIVE].delete(expectString(nameOrId, 'nameOrId')));
  }

  exportMnemonic(nameOrId, password) {
    return callAsync(() =>
      this[NATIVE].exportMnemonic(
        expectString(nameOrId, 'nameOrId'),
        expectString(password, 'password'),
      ),
    );
  }
}

// ---------------------------------------------------------------------------------------
// A queue that hands items to waiting Promises first, then to event listeners, and keeps
// them otherwise, so `accept()`, `for await` and `on(...)` can be mixed without losing
// anything.

class Handoff {
  constructor(emitter, event) {
    this.emitter = emitter;
    this.event = event;
    this.items = [];
    this.waiters = [];
    this.ended = false;
    this.error = null;
    emitter.on('newListener', (name) => {
      if (name === event && this.items.length > 0) setImmediate(() => this.flush());
    });
  }

  deliver(item) {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(item);
    else if (this.emitter.listenerCount(this.event) > 0) this.emitter.emit(this.event, item);
    else this.items.push(item);
  }

  flush() {
    while (this.items.length > 0 && this.emitter.listenerCount(this.event) > 0) {
      this.emitter.emit(this.event, this.items.shift());
    }
  }

  end(error) {
    this.ended = true;
    this.error = error ?? null;
    for (const w of this.waiters.splice(0)) w.resolve(null);
  }

  next() {
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.push({ resolve }));
  }
}

// ---------------------------------------------------------------------------------------
// Streams

// Chunk size asked of the core per read: large enough that a 64 MiB transfer is a few
// hundred native calls, small enough to stay within one flow-control window.
const READ_CHUNK = 256 * 1024;
// What writeAll returns when the core took everything at once.
const RESOLVED = Promise.resolve();

/**
 * A snap2p stream as a Node `Duplex`. Backpressure is the core's flow control end to end:
 * a write's callback runs only once the core accepted the bytes (its send window had
 * room), and the core is read only when this stream's consumer wants data, which is what
 * returns credit to the sender.
 */
class Stream extends Duplex {
  constructor(nativeStream, connection, options) {
    super({ allowHalfOpen: true, readableHighWaterMark: READ_CHUNK, ...options });
    this[NATIVE] = nativeStream;
    this.connection = connection;
    this.id = nativeStream.id;
    this.label = nativeStream.label ?? null;
    this._reading = false;
    // The end was read (pushed, or returned by readInto): the core is not asked again.
    this._readDone = false;
    this._readableWait = null;
    this._flushScheduled = false;
  }

  _read(size) {
    if (this._reading) return;
    const max = Math.max(size, READ_CHUNK);
    if (this.readableLength > 0) {
      // A chunk waits in the Readable's buffer: one pushed beside it now would make the
      // read() under way return both, copied into one (Buffer.concat). Pushed once that
      // read() has returned instead.
      this._reading = true;
      process.nextTick(() => {
        this._reading = false;
        if (!this.destroyed) this._pull(max);
      });
      return;
    }
    this._pull(max);
  }

  _pull(max) {
    // What the core already holds is taken synchronously, chunk after chunk, until the
    // consumer wants no more (push() returns false); only when it holds nothing is there a
    // wait, which the core settles from its own thread when data comes.
    while (!this._reading && !this._readDone) {
      let chunk;
      try {
        chunk = this[NATIVE].tryRead(max);
      } catch (e) {
        this._readFailed(e);
        return;
      }
      if (chunk === null) {
        this._reading = true;
        this._whenReadable().then(
          () => {
            this._reading = false;
            if (!this.destroyed) this._pull(max);
          },
          (e) => {
            this._reading = false;
            this.destroy(fromNative(e));
          },
        );
        return;
      }
      if (chunk.length === 0) {
        this._readDone = true;
        this.push(null);
        return;
      }
      if (!this.push(chunk)) return;
    }
  }

  _readFailed(e) {
    // A failed native read: the stream's error. Destroyed on the next tick, as a failed
    // read always was: code running now (a writeAll() right after a readAll(), say) meets
    // the stream's own error, not Node's ERR_STREAM_DESTROYED.
    const err = fromNative(e);
    process.nextTick(() => this.destroy(err));
    return err;
  }

  _whenReadable() {
    // One wait at a time, shared by _pull and readInto: the core keeps one read waker per
    // stream, and a second wait would replace (so settle) the first, each waking the other
    // in turn.
    if (this._readableWait === null) {
      this._readableWait = this[NATIVE].readable().finally(() => {
        this._readableWait = null;
      });
    }
    return this._readableWait;
  }

  /**
   * Reads into `buf` (a Buffer or Uint8Array of at least 1 byte), from its start: resolves
   * with the number of bytes copied, everything that has arrived up to `buf.length`
   * (waiting only while nothing has), or 0 once the peer finished its side. Rejects with
   * the stream's error. For a reader that keeps one buffer: nothing is allocated per read
   * and one call takes what many frames brought, where the Readable side makes a Buffer
   * and settles a promise per chunk (0.81× against 0.72× of the native receiver, at 0.31
   * against 0.37 CPU s/GiB: docs/BENCHMARKS.md, "Reading into a buffer the caller
   * keeps"). Bytes the Readable side already holds (from `read()`, `'data'` or iteration)
   * come first; use one way of reading per stream.
   */
  async readInto(buf) {
    if (!(buf instanceof Uint8Array)) throw invalid('readInto() takes a Buffer or Uint8Array');
    if (buf.length === 0) throw invalid('readInto() needs a buffer of at least 1 byte');
    for (;;) {
      if (this.readableLength > 0) {
        const chunk = this.read(Math.min(buf.length, this.readableLength));
        if (chunk !== null) {
          buf.set(chunk);
          return chunk.length;
        }
      }
      if (this._readDone) return 0;
      if (this.destroyed) {
        throw this.errored ?? new Snap2pError(ErrorCode.ERR_STREAM_CLOSED, 'stream destroyed');
      }
      let n;
      try {
        n = this[NATIVE].tryReadInto(buf);
      } catch (e) {
        throw this._readFailed(e);
      }
      if (n === null) {
        await this._whenReadable();
        continue;
      }
      if (n === 0) {
        // The Readable side ends too ('end', then 'close' once the writable side is done).
        this._readDone = true;
        this.push(null);
        this.read(0);
      }
      return n;
    }
  }

  _write(chunk, encoding, callback) {
    const data = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk;
    this._send(data, callback);
  }

  _writev(chunks, callback) {
    // Coalesce what queued up while the previous write waited for credit: one native call.
    this._send(Buffer.concat(chunks.map((c) => c.chunk)), callback);
  }

  _send(data, callback) {
    // Most writes fit the send buffer: taken synchronously, corked. The core is woken
    // once, at the end of this event-loop turn (setImmediate), so a burst of writes is
    // one hand-off to its threads and one large socket write (Node's own cork()/uncork()
    // pattern); only what does not fit waits, and waiting for room wakes the core too.
    let taken;
    try {
      taken = this[NATIVE].tryWrite(data);
    } catch (e) {
      callback(fromNative(e));
      return;
    }
    if (taken > 0) this._scheduleFlush();
    if (taken === data.length) {
      callback();
      return;
    }
    this._sendWhenWritable(data.subarray(taken), callback);
  }

  _scheduleFlush() {
    if (this._flushScheduled) return;
    this._flushScheduled = true;
    setImmediate(() => {
      this._flushScheduled = false;
      this[NATIVE].flush();
    });
  }

  _sendWhenWritable(rest, callback) {
    // The core settles `writable()` from its own thread when it frees send room; the
    // rest is then taken synchronously again (usually at once, whole).
    callAsync(() => this[NATIVE].writable()).then(() => this._send(rest, callback), callback);
  }

  _final(callback) {
    try {
      this[NATIVE].finish();
      callback();
    } catch (e) {
      callback(fromNative(e));
    }
  }

  _destroy(err, callback) {
    // A stream destroyed before both directions completed is aborted (RESET), so the peer
    // learns it instead of waiting forever.
    if (!(this.writableFinished && this.readableEnded)) {
      const code = err && Number.isInteger(err.code) ? err.code : ErrorCode.ERR_UNSPECIFIED;
      this[NATIVE].reset(code);
    }
    callback(err);
  }

  /** Aborts both directions, telling the peer `code`. */
  reset(code = ErrorCode.ERR_UNSPECIFIED) {
    if (!Number.isInteger(code) || code < 0) throw invalid('code must be a non-negative integer');
    this[NATIVE].reset(code);
    this.destroy();
  }

  /** Promise form of `write`: resolves once the core accepted all of `data`. */
  writeAll(data) {
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      return Promise.reject(invalid('data must be a string, Buffer or Uint8Array'));
    }
    // Nothing queued or in flight in the Writable (so nothing this write must follow),
    // and the stream is open: the core takes what fits now, in the order written, and a
    // write it takes whole resolves at once. Why: Writable's bookkeeping, its nextTick
    // callback and a new Promise per write were a Node.js sender's extra CPU over native
    // (docs/BENCHMARKS.md). Anything else (a full send buffer, a refusal, which the
    // Writable turns into the stream's error) takes the Writable path.
    if (
      typeof data !== 'string' &&
      this.writableLength === 0 &&
      !this.writableCorked &&
      !this.writableEnded &&
      !this.destroyed
    ) {
      let taken = 0;
      try {
        taken = this[NATIVE].tryWrite(data);
      } catch {
        // The Writable path meets the same refusal and reports it as the stream's error.
      }
      if (taken > 0) this._scheduleFlush();
      if (taken === data.length) return RESOLVED;
      data = data.subarray(taken);
    }
    return new Promise((resolve, reject) => {
      this.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Reads until the peer finishes; rejects with ERR_RESOURCE_EXHAUSTED past `limit`. */
  async readAll(limit = 64 * 1024 * 1024) {
    const chunks = [];
    let total = 0;
    // destroyOnReturn: false keeps the writable side usable after the read side ends.
    for await (const chunk of this.iterator({ destroyOnReturn: false })) {
      total += chunk.length;
      if (total > limit) {
        const e = new Snap2pError(ErrorCode.ERR_RESOURCE_EXHAUSTED, `stream longer than ${limit} bytes`);
        this.destroy(e);
        throw e;
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }
}

// ---------------------------------------------------------------------------------------
// Connections

/** The stream side of a connection (the TypeScript implementation's `multiplexer`). */
class Multiplexer extends EventEmitter {
  constructor(connection) {
    super();
    this.connection = connection;
    this._streams = new Handoff(this, 'stream');
    this._accepting = false;
    // Inbound streams are pulled from the core only once someone wants them, so an idle
    // connection keeps no Promise pending (and the process can exit).
    this.on('newListener', (name) => {
      if (name === 'stream') this._startAccepting();
    });
  }

  /** Opens a stream (synchronously, as in the TypeScript API). */
  openStream(label) {
    const l = optionalString(label, 'label');
    const ns = call(() => this.connection[NATIVE].openStream(l));
    return new Stream(ns, this.connection);
  }

  /** The next stream the peer opens, or `null` once the connection is closed. */
  acceptStream() {
    this._startAccepting();
    return this._streams.next();
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      const s = await this.acceptStream();
      if (s === null) return;
      yield s;
    }
  }

  _startAccepting() {
    if (this._accepting || this._streams.ended) return;
    this._accepting = true;
    const loop = async () => {
      for (;;) {
        let ns;
        try {
          ns = await this.connection[NATIVE].acceptStream();
        } catch (e) {
          this._streams.end(fromNative(e));
          return;
        }
        this._streams.deliver(new Stream(ns, this.connection));
      }
    };
    loop();
  }
}

/** An authenticated session with a remote Stacks principal. */
class Connection extends EventEmitter {
  constructor(nativeConn, peer) {
    super();
    this[NATIVE] = nativeConn;
    this.peer = peer;
    /** The authenticated `stacks:<address>` of the other side. */
    this.remotePrincipal = nativeConn.remotePrincipal;
    this.sessionId = nativeConn.sessionId;
    /** Short id (first 8 bytes of the session id, hex): the `connection` of its events. */
    this.id = nativeConn.id;
    this.remoteAddress = nativeConn.remoteAddress ?? null;
    this.localAddress = nativeConn.localAddress ?? null;
    this.multiplexer = new Multiplexer(this);
    this._closeWatch = null;
    // 'close' is delivered through a weak native subscription: listening for it never
    // keeps the process alive by itself.
    this.on('newListener', (name) => {
      if (name === 'close' && this._closeWatch === null) {
        this._closeWatch = nativeConn.watchClosed((info) => {
          this.emit('close', info);
        });
      }
    });
  }

  /** The peer's verified AliasCard, or `null`. */
  get remoteAlias() {
    return this[NATIVE].remoteAlias ?? null;
  }

  get closed() {
    return this[NATIVE].isClosed;
  }

  /** Why the connection ended (`{code, name, message}`), or `null` while it is open. */
  get closeReason() {
    return this[NATIVE].closeReason ?? null;
  }

  supports(capability) {
    return this[NATIVE].supports(expectString(capability, 'capability'));
  }

  /** This session's counters now (docs/EVENTS.md, "Counters"); times in milliseconds. */
  stats() {
    return this[NATIVE].stats();
  }

  openStream(label) {
    return this.multiplexer.openStream(label);
  }

  acceptStream() {
    return this.multiplexer.acceptStream();
  }

  /** Closes gracefully (queued data is flushed first), telling the peer `code`. */
  close(code = 0, reason = '') {
    if (!Number.isInteger(code) || code < 0) throw invalid('code must be a non-negative integer');
    this[NATIVE].close(code, expectString(reason, 'reason'));
  }

  /** Presents a PermissionGrant (bytes) to the other node; rejects with its code. */
  presentGrant(grant) {
    const bytes = expectBytes(grant, 'grant');
    return callAsync(() => this[NATIVE].presentGrant(bytes));
  }

  /** Resolves with `{code, name, message}` once the connection has ended. */
  waitClosed() {
    return callAsync(() => this[NATIVE].closed());
  }
}

// ---------------------------------------------------------------------------------------
// Events

/**
 * A subscription to a peer's events (`peer.events()`), an async iterator:
 * `for await (const ev of sub)`. Leaving the loop (`break`, `return`, a throw) or
 * `close()` stops it; closing the peer ends it once its last events are read. Each
 * event is a plain object (docs/EVENTS.md): `kind`, `at` (a `Date`) and the fields of
 * its kind; durations are milliseconds, `code` the protocol's error code.
 */
class EventSubscription {
  constructor(nativeSub) {
    this[NATIVE] = nativeSub;
  }

  /** Iterator protocol: `{value: event, done: false}`, `{done: true}` once it ended. */
  async next() {
    const ev = await callAsync(() => this[NATIVE].next());
    if (ev === null || ev === undefined) return { value: undefined, done: true };
    return { value: { ...ev, at: new Date(ev.at) }, done: false };
  }

  /** Called when a `for await` loop is left early: stops the subscription. */
  async return() {
    this.close();
    return { value: undefined, done: true };
  }

  /** Stops the subscription; a `next()` waiting resolves `done`. Idempotent. */
  close() {
    this[NATIVE].close();
  }

  get closed() {
    return this[NATIVE].closed;
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

// ---------------------------------------------------------------------------------------
// Peer

const PEER_OPTIONS = [
  'visibility',
  'compat',
  'allowlist',
  'allowlistGate',
  'networks',
  'network',
  'alias',
  'displayName',
  'px1',
  'hs2',
  'attestationTtlSecs',
  'preauthRatePerMin',
  'connectTimeoutMs',
  'rekeyAfterBytes',
  'rekeyAfterFrames',
  'rekeyIntervalSecs',
  'tlsCertFile',
  'tlsKeyFile',
  'tlsRootFile',
  'externalLocators',
  'relay',
  'resolver',
];

const RESOLVER_OPTIONS = [
  'steps',
  'timeoutsMs',
  'dht',
  'dhtBootstrap',
  'dhtPublish',
  'advertCacheFile',
  'mdns',
  'bnsProviders',
];

/** `resolver: {…}` as the native options (shapes only: the core checks the values). */
function nativeResolverOptions(resolver) {
  if (resolver === undefined || resolver === null) return undefined;
  if (typeof resolver !== 'object' || Array.isArray(resolver)) {
    throw invalid('resolver must be an object of resolver options');
  }
  const r = { ...resolver };
  rejectUnknownKeys(r, RESOLVER_OPTIONS, 'resolver');
  for (const key of ['steps', 'dhtBootstrap', 'bnsProviders']) {
    if (r[key] !== undefined && !(Array.isArray(r[key]) && r[key].every((x) => typeof x === 'string'))) {
      throw invalid(`resolver.${key} must be an array of strings`);
    }
  }
  for (const key of ['dht', 'dhtPublish', 'mdns']) {
    if (r[key] !== undefined && typeof r[key] !== 'boolean') throw invalid(`resolver.${key} must be a boolean`);
  }
  optionalString(r.advertCacheFile, 'resolver.advertCacheFile');
  if (r.timeoutsMs !== undefined) {
    const t = r.timeoutsMs;
    if (t === null || typeof t !== 'object' || Array.isArray(t)) {
      throw invalid('resolver.timeoutsMs must be an object of step name to milliseconds');
    }
    for (const [k, ms] of Object.entries(t)) {
      if (!(Number.isInteger(ms) && ms > 0 && ms <= 0xffffffff)) {
        throw invalid(`resolver.timeoutsMs.${k} must be a positive integer`);
      }
    }
  }
  return r;
}

const RELAY_OPTIONS = [
  'allowlist',
  'maxReservations',
  'maxCircuits',
  'maxCircuitsPerPeer',
  'circuitMaxBytes',
  'circuitMaxDurationSecs',
  'requestsPerMin',
];

/** `relay: true | {…}` (serve as a relay) as the native options; absent, null or false: do not serve. */
function nativeRelayOptions(relay) {
  if (relay === undefined || relay === null || relay === false) return undefined;
  if (relay === true) return {};
  if (typeof relay !== 'object' || Array.isArray(relay)) {
    throw invalid('relay must be true or an object of relay options');
  }
  const r = { ...relay };
  rejectUnknownKeys(r, RELAY_OPTIONS, 'relay');
  if (r.allowlist !== undefined) {
    if (!Array.isArray(r.allowlist)) throw invalid('relay.allowlist must be an array of principals');
    r.allowlist = r.allowlist.map((p) => formatPrincipal(p));
  }
  for (const key of ['maxReservations', 'maxCircuits', 'maxCircuitsPerPeer', 'requestsPerMin']) {
    if (r[key] !== undefined && !(Number.isInteger(r[key]) && r[key] >= 0 && r[key] <= 0xffffffff)) {
      throw invalid(`relay.${key} must be a non-negative integer`);
    }
  }
  const bytes = r.circuitMaxBytes;
  if (bytes !== undefined && !(Number.isSafeInteger(bytes) && bytes >= 0)) {
    throw invalid('relay.circuitMaxBytes must be a non-negative integer');
  }
  const secs = r.circuitMaxDurationSecs;
  if (secs !== undefined && !(typeof secs === 'number' && Number.isFinite(secs) && secs > 0)) {
    throw invalid('relay.circuitMaxDurationSecs must be a positive number');
  }
  return r;
}

function nativePeerOptions(options) {
  const o = { ...options };
  delete o.wallet;
  delete o.signer;
  rejectUnknownKeys(o, PEER_OPTIONS, 'Peer.create');
  o.relay = nativeRelayOptions(o.relay);
  o.resolver = nativeResolverOptions(o.resolver);
  if (o.allowlist !== undefined) {
    if (!Array.isArray(o.allowlist)) throw invalid('allowlist must be an array of principals');
    o.allowlist = o.allowlist.map((p) => formatPrincipal(p));
  }
  if (o.externalLocators !== undefined) {
    if (!Array.isArray(o.externalLocators) || !o.externalLocators.every((l) => typeof l === 'string')) {
      throw invalid('externalLocators must be an array of locator strings');
    }
  }
  for (const key of [
    'visibility',
    'compat',
    'networks',
    'network',
    'alias',
    'displayName',
    'tlsCertFile',
    'tlsKeyFile',
    'tlsRootFile',
  ]) {
    optionalString(o[key], key);
  }
  for (const key of ['allowlistGate', 'px1', 'hs2']) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw invalid(`${key} must be a boolean`);
  }
  for (const key of [
    'attestationTtlSecs',
    'preauthRatePerMin',
    'connectTimeoutMs',
    'rekeyAfterBytes',
    'rekeyAfterFrames',
  ]) {
    if (o[key] !== undefined && !(Number.isSafeInteger(o[key]) && o[key] >= 0)) {
      throw invalid(`${key} must be a non-negative integer`);
    }
  }
  const interval = o.rekeyIntervalSecs;
  if (interval !== undefined && !(typeof interval === 'number' && Number.isFinite(interval) && interval >= 0)) {
    throw invalid('rekeyIntervalSecs must be a non-negative number');
  }
  return o;
}

/** Wraps a host signer (`{principal, sign(request), form?}`) as the native callback. */
function signerCallback(signer) {
  return (request) =>
    Promise.resolve()
      .then(() =>
        signer.sign(
          request.kind === 'digest'
            ? { kind: 'digest', digest: request.digest }
            : { kind: 'message', message: request.message },
        ),
      )
      .then((sig) => {
        if (!(sig instanceof Uint8Array)) {
          throw new TypeError('signer.sign() must resolve to a 65-byte Buffer');
        }
        return Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength);
      });
}

/** A snap2p node: one Stacks principal, one node key, any number of connections. */
class Peer extends EventEmitter {
  constructor(nativePeer) {
    super();
    if (!(nativePeer instanceof native.NativePeer)) throw invalid('use Peer.create()');
    this[NATIVE] = nativePeer;
    this._incoming = new Handoff(this, 'connection');
    this._accepting = false;
    this._connections = new Map();
  }

  /**
   * Creates a peer. With no `wallet` or `signer`, a throw-away wallet is generated (as in
   * the TypeScript implementation). `signer` is any object with `principal` and an async
   * `sign(request)`; `wallet` a `Wallet`.
   */
  static async create(options) {
    const o = expectObject(options, 'options');
    const opts = nativePeerOptions(o);
    if (o.wallet !== undefined && o.signer !== undefined) {
      throw invalid('give either a wallet or a signer, not both');
    }
    let np;
    if (o.wallet !== undefined) {
      if (!(o.wallet instanceof Wallet)) throw invalid('wallet must be a Wallet');
      np = await callAsync(() => o.wallet[NATIVE].createPeer(opts));
    } else if (o.signer !== undefined) {
      const s = o.signer;
      if (s === null || typeof s !== 'object' && typeof s !== 'function') {
        throw invalid('signer must be an object with principal and sign()');
      }
      const principal = formatPrincipal(s.principal);
      if (typeof s.sign !== 'function') throw invalid('signer.sign must be a function');
      const form = optionalString(s.form, 'signer.form');
      np = await callAsync(() => native.createPeerWithSigner(principal, form, signerCallback(s), opts));
    } else {
      np = await callAsync(() => native.createEphemeralPeer(opts));
    }
    return new Peer(np);
  }

  /** This peer's `stacks:<address>`. */
  get principal() {
    return this[NATIVE].principal;
  }

  get nodePublicKey() {
    return this[NATIVE].nodePublicKey;
  }

  get visibility() {
    return this[NATIVE].visibility;
  }

  get closed() {
    return this[NATIVE].closed;
  }

  get listenAddrs() {
    return this[NATIVE].listenAddrs();
  }

  /** Every listener as a dialable locator: `127.0.0.1:9000`, `ws://…/p`, `wss://…/p`. */
  get listenLocators() {
    return this[NATIVE].listenLocators();
  }

  /** Where others reach this peer, as PX-1 advertises it: `externalLocators`, then listeners. */
  get reachableLocators() {
    return this[NATIVE].reachableLocators();
  }

  /**
   * Subscribes to this peer's events (docs/EVENTS.md): an async iterator, one
   * subscription per call. Events arrive from subscription on; a subscriber more than
   * 1,024 events behind gets one `lagged` event with the count.
   */
  events() {
    return new EventSubscription(this[NATIVE].events());
  }

  /** This peer's counters now (docs/EVENTS.md, "Counters"). */
  stats() {
    return this[NATIVE].stats();
  }

  /**
   * Listens on `port` (all interfaces) or `host:port`, or a locator of another transport
   * (`ws://127.0.0.1:0/p`, `wss://0.0.0.0:443/p` with `tlsCertFile`); resolves to the bound
   * `ip:port` (`listenLocators` has the full locators).
   * Authenticated inbound connections arrive as 'connection' events, through `accept()`
   * or `for await (const conn of peer)`. While listening the process stays alive, until
   * `close()`.
   */
  async listen(port, host) {
    let addr;
    if (typeof port === 'number') {
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalid(`invalid port ${port}`);
      const h = optionalString(host, 'host');
      addr = h === undefined ? String(port) : h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
    } else if (typeof port === 'string') {
      addr = port;
    } else {
      throw invalid('listen() takes a port number or an address string');
    }
    const bound = await callAsync(() => this[NATIVE].listen(addr));
    this._startAccepting();
    return bound;
  }

  _startAccepting() {
    if (this._accepting) return;
    this._accepting = true;
    const loop = async () => {
      for (;;) {
        let nc;
        try {
          nc = await this[NATIVE].accept();
        } catch (e) {
          this.emit('error', fromNative(e));
          break;
        }
        if (nc === null) break;
        this._incoming.deliver(this._wrap(nc));
      }
      this._incoming.end();
    };
    loop();
  }

  _wrap(nc) {
    const known = this._connections.get(nc.sessionId);
    if (known) return known;
    const conn = new Connection(nc, this);
    this._connections.set(nc.sessionId, conn);
    return conn;
  }

  /** The next inbound connection, or `null` once the peer is closed. */
  accept() {
    return this._incoming.next();
  }

  async *[Symbol.asyncIterator]() {
    for (;;) {
      const c = await this.accept();
      if (c === null) return;
      yield c;
    }
  }

  /**
   * Dials `host:port` or a principal (`stacks:SP…`, found through PX-1). Options:
   * `invite` (hex token for a stealth listener), `expect` (fail unless the peer is this
   * principal).
   */
  async dial(target, options) {
    expectString(target, 'target');
    const o = expectObject(options, 'options');
    rejectUnknownKeys(o, ['invite', 'expect'], 'dial');
    const invite = optionalString(o.invite, 'invite');
    const expect = o.expect === undefined ? undefined : formatPrincipal(o.expect);
    const nc = await callAsync(() => this[NATIVE].dial(target, invite, expect));
    return this._wrap(nc);
  }

  /** Live connections, both directions. */
  connections() {
    const live = this[NATIVE].connections().map((nc) => this._wrap(nc));
    const ids = new Set(live.map((c) => c.sessionId));
    for (const id of this._connections.keys()) if (!ids.has(id)) this._connections.delete(id);
    return live;
  }

  /**
   * Where a principal (`stacks:SP…`) or a BNS name (`alice.btc`, with
   * `resolver.bnsProviders`) can be reached, by the resolver chain (`resolver.steps`):
   * `{principal, name, answeredBy, locators: [{locator, verified}], steps: [{name, outcome,
   * durationMs, count, error}], durationMs}`. A locator is `verified` when a live signed
   * advert of the principal lists it, else a hint only the dial's AUTH proves. Rejects
   * with the core's error when nothing answered or the name did not resolve. Dials nobody.
   */
  async resolve(target) {
    const t = expectString(target, 'target');
    const r = await callAsync(() => this[NATIVE].resolve(t));
    return {
      ...r,
      name: r.name ?? null,
      answeredBy: r.answeredBy ?? null,
      steps: r.steps.map((s) => ({ ...s, error: s.error ?? null })),
    };
  }

  /**
   * The reservations this peer keeps on relays (`listen('relay://host:port')`):
   * `[{relay, active, observed}]`, `observed` being this peer's `ip:port` as the relay sees it.
   */
  relayReservations() {
    return this[NATIVE].relayReservations().map((r) => ({ ...r, observed: r.observed ?? null }));
  }

  /** What this peer serves as a relay now: `{reservations, circuits, circuitsTotal, bytesForwarded, refused}`. */
  relayStats() {
    return this[NATIVE].relayStats();
  }

  /**
   * Replaces the relayed connection `conn` by a direct one (TCP simultaneous open, docs/PROTOCOL.md
   * §32.6): resolves to the new connection (`stats().transport` is `'punch'`); `conn` stays
   * open. Rejects when no direct path was found: keep using `conn`.
   */
  async holePunch(conn) {
    if (!(conn instanceof Connection)) throw invalid('holePunch() takes a Connection');
    const nc = await callAsync(() => this[NATIVE].holePunch(conn[NATIVE]));
    return this._wrap(nc);
  }

  /** Stops listening and closes every connection; the peer cannot be used afterwards. */
  async close() {
    await callAsync(() => this[NATIVE].close());
    this._incoming.end();
    this._connections.clear();
    this.emit('close');
  }

  /** Creates an invite token for stealth mode: `{token, id, createdAt, expiresAt, …}`. */
  createInvite(options) {
    const { ttlSecs, oneTime } = expectObject(options, 'options');
    if (ttlSecs !== undefined && !Number.isInteger(ttlSecs)) throw invalid('ttlSecs must be an integer');
    if (oneTime !== undefined && typeof oneTime !== 'boolean') throw invalid('oneTime must be a boolean');
    return call(() => this[NATIVE].createInvite(ttlSecs, oneTime));
  }

  /** Current invites; `token` is empty here (it is shown only at creation). */
  listInvites() {
    return this[NATIVE].listInvites();
  }

  revokeInvite(tokenOrId) {
    return this[NATIVE].revokeInvite(expectString(tokenOrId, 'tokenOrId'));
  }

  /** Replaces the permission rules (one `PRINCIPAL:LABEL[,LABEL]` per line); `null`: none. */
  setPermissions(rules) {
    const text = rules === null || rules === undefined ? null : expectString(rules, 'rules');
    call(() => this[NATIVE].setPermissions(text));
  }

  /** Also honours PermissionGrants signed by `principal`. */
  addGrantOwner(principal) {
    call(() => this[NATIVE].addGrantOwner(formatPrincipal(principal)));
  }

  /** Revokes a grant by id, or every grant of a principal. */
  revokeGrant(idOrPrincipal) {
    call(() => this[NATIVE].revokeGrant(expectString(idOrPrincipal, 'idOrPrincipal')));
  }

  allow(principal) {
    call(() => this[NATIVE].allow(formatPrincipal(principal)));
  }

  disallow(principal) {
    call(() => this[NATIVE].disallow(formatPrincipal(principal)));
  }

  get allowlist() {
    return this[NATIVE].allowlist();
  }

  /** Signs and publishes an AliasCard, sent to peers after authentication. */
  setAlias(alias, displayName) {
    return callAsync(() =>
      this[NATIVE].setAlias(expectString(alias, 'alias'), optionalString(displayName, 'displayName')),
    );
  }

  get alias() {
    return this[NATIVE].alias ?? null;
  }
}

module.exports = {
  Peer,
  Connection,
  Multiplexer,
  Stream,
  EventSubscription,
  Wallet,
  WalletStore,
  Snap2pError,
  ErrorCode,
  errorName,
  formatPrincipal,
  parsePrincipal,
  principalFromParts,
  c32Encode,
  c32Decode,
  stacksMessageHash,
  normalizeAlias,
  recoverPrincipal,
  decodeGrant,
  verifyGrant,
  nodeGrantDecision,
  issueGrantWithSigner,
  decodeAdvert,
  verifyAdvert,
  issueAdvert,
};
