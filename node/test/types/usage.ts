// Compiled with tsc against ../../index.d.ts (never run): the README example and the
// extended API must type-check as documented.
import {
  Peer,
  Wallet,
  WalletStore,
  Snap2pError,
  ErrorCode,
  formatPrincipal,
  parsePrincipal,
  type Connection,
  type Stream,
  type HostSigner,
  type ErrorInfo,
  type EventSubscription,
  type PeerEvent,
  type PeerStats,
  type ConnectionStats,
  type RelayOptions,
  type ReservationInfo,
  type RelayStats,
  type GrantInfo,
  decodeGrant,
  verifyGrant,
  nodeGrantDecision,
  issueGrantWithSigner,
  type ResolverOptions,
  type ResolveReport,
  type AdvertInfo,
  decodeAdvert,
  verifyAdvert,
  issueAdvert,
} from '../..';

async function readme(): Promise<void> {
  const peer = await Peer.create();
  console.log(`I am: ${formatPrincipal(peer.principal)}`);
  await peer.listen(9000);
  peer.on('connection', (conn) => {
    console.log(`Connected: ${formatPrincipal(conn.remotePrincipal)}`);
    conn.multiplexer.on('stream', (stream) => {
      stream.on('data', (data: Buffer) => {
        console.log('Received:', data.toString());
        stream.write(data);
      });
    });
  });
  const conn = await peer.dial('192.168.1.100:9000');
  const stream = conn.multiplexer.openStream('my-protocol');
  stream.write(Buffer.from('Hello!'));
}

async function extended(): Promise<void> {
  const signer: HostSigner = {
    principal: 'stacks:SP000000000000000000002Q6VF78',
    form: 'message',
    async sign(req) {
      return req.kind === 'digest' ? Buffer.alloc(65, req.digest[0]) : Buffer.from(req.message);
    },
  };
  const store = WalletStore.open(undefined, { scryptLogN: 12 });
  const wallet: Wallet = await store.unlock('Main', 'pw');
  const peer = await Peer.create({ visibility: 'stealth', allowlist: [wallet.principal], signer });
  const invite = peer.createInvite({ ttlSecs: 60, oneTime: true });
  const c: Connection = await peer.dial('stacks:SP000000000000000000002Q6VF78', { invite: invite.token });
  const s: Stream = c.openStream();
  await s.writeAll('x');
  const body: Buffer = await s.readAll(1024);
  const got: number = await s.readInto(new Uint8Array(16));
  void got;
  for await (const inbound of peer) {
    for await (const st of inbound.multiplexer) st.pipe(st);
  }
  c.on('close', (info: ErrorInfo) => console.log(info.code, info.name));
  const alias = c.remoteAlias?.displayName ?? parsePrincipal(c.remotePrincipal).address;
  try {
    await peer.dial('x');
  } catch (e) {
    if (e instanceof Snap2pError && e.code === ErrorCode.ERR_NOT_ALLOWED) console.log(e.name);
  }
  console.log(body, alias, invite.id, peer.listInvites().length);
  await peer.close();
}

async function observability(): Promise<void> {
  const peer = await Peer.create({
    tlsCertFile: 'cert.pem',
    tlsKeyFile: 'key.pem',
    tlsRootFile: 'ca.pem',
    rekeyAfterBytes: 1 << 20,
    rekeyAfterFrames: 1000,
    rekeyIntervalSecs: 0,
    externalLocators: ['wss://node.example.org:443/snap2p'],
    hs2: true,
  });
  await peer.listen('wss://127.0.0.1:0/p');
  const locators: string[] = peer.listenLocators;
  const advertised: string[] = peer.reachableLocators;
  const events: EventSubscription = peer.events();
  for await (const ev of events) {
    const e: PeerEvent = ev;
    const when: Date = e.at;
    if (e.kind === 'handshake_failed' && e.code === ErrorCode.ERR_INVITE_INVALID) break;
    if (e.kind === 'session_closed') console.log(advertised, e.connection, e.bytesSent, e.duration, when);
    if (e.kind === 'stream_opened') console.log(e.stream ?? 0, e.label ?? '');
    if (e.kind === 'px1_query') console.log(e.count ?? 0);
    if (e.kind === 'session_established') console.log(e.hs2 === true);
  }
  events.close();
  const stats: PeerStats = peer.stats();
  const failed: number = stats.handshakesFailed[ErrorCode.ERR_NOT_ALLOWED] ?? 0;
  const conn: Connection = await peer.dial(locators[0]);
  const cs: ConnectionStats = conn.stats();
  const id: string = conn.id;
  console.log(failed, cs.bytesReceived, cs.rtt ?? 0, cs.transport, id);
  const hs2: boolean = cs.hs2;
  const sessionsHs2: number = stats.sessionsHs2;
  console.log(cs.framesSent, cs.framesReceived, cs.streamsOpened, hs2, sessionsHs2);
}

async function permissions(): Promise<void> {
  const owner: Wallet = Wallet.generate();
  const holder: Wallet = Wallet.generate();
  const node = await Peer.create({ wallet: owner });
  node.setPermissions(`${holder.principal}:files*\n*:public\n`);
  node.setPermissions(null);
  node.addGrantOwner(Wallet.generate().principal);
  const addr: string = await node.listen('127.0.0.1:0');
  const digest: Buffer = await owner.issueGrant(holder.principal, ['files*'], { ttlSecs: 3600, form: 'digest' });
  const text: Buffer = await owner.issueGrant(holder.principal, ['admin']);
  const team: Buffer = await owner.issueGrant(holder.principal, ['team/*'], { delegable: true });
  const dev: Buffer = await holder.issueGrant(Wallet.generate().principal, ['team/x'], { parent: team, form: 'message' });
  const info: GrantInfo = decodeGrant(dev);
  const parentId: string | null = verifyGrant(dev, info.issuedAt + 1);
  const chain: string[] = nodeGrantDecision(dev, { owners: [owner.principal], presenter: info.holder, now: info.issuedAt + 1 });
  const again: Buffer = await owner.issueGrantWithNonce(holder.principal, ['x'], { issuedAt: 1700000000, nonce: info.nonce, ttlSecs: 60 });
  void parentId;
  void chain;
  void again;
  const hosted: Buffer = await issueGrantWithSigner(
    { principal: owner.principal, form: 'message', sign: (r) => (r.kind === 'digest' ? owner.signDigest(r.digest) : owner.signMessage(r.message)) },
    holder.principal,
    ['x'],
    { ttlSecs: 60 },
  );
  void hosted;
  const client = await Peer.create({ wallet: holder });
  const conn: Connection = await client.dial(addr);
  const presented: void = await conn.presentGrant(digest);
  await conn.presentGrant(new Uint8Array(text));
  try {
    await conn.presentGrant(dev);
  } catch (e) {
    if (e instanceof Snap2pError && e.code === ErrorCode.ERR_NOT_ALLOWED) console.log(e.name);
  }
  const s: Stream = conn.openStream('admin');
  s.on('error', (e: Error) => {
    if (e instanceof Snap2pError && e.code === ErrorCode.ERR_STREAM_REFUSED) console.log('refused');
  });
  node.revokeGrant(holder.principal);
  console.log(presented);
  await Promise.all([client.close(), node.close()]);
}

async function relays(): Promise<void> {
  const limits: RelayOptions = { allowlist: [Wallet.generate().principal], maxReservations: 8, circuitMaxDurationSecs: 60 };
  const relay = await Peer.create({ relay: limits });
  const open = await Peer.create({ relay: true });
  const addr: string = await relay.listen('0.0.0.0:4001');
  const nat = await Peer.create();
  await nat.listen(`relay://${addr}`);
  const res: ReservationInfo[] = nat.relayReservations();
  const observed: string | null = res[0].observed;
  const via: string = nat.listenLocators.find((l) => l.startsWith('relay://')) ?? '';
  const conn: Connection = await open.dial(via);
  const direct: Connection = await open.holePunch(conn);
  const path: string = direct.stats().transport;
  const st: RelayStats = relay.relayStats();
  console.log(res[0].relay, res[0].active, observed, path, st.circuits, st.circuitsTotal, st.splicedTotal, st.bytesForwarded, st.refused);
  await Promise.all([relay.close(), open.close(), nat.close()]);
}

async function discovery(): Promise<void> {
  const resolver: ResolverOptions = {
    steps: ['cache', 'px-1', 'dht'],
    timeoutsMs: { dht: 5000 },
    dhtBootstrap: ['127.0.0.1:6881'],
    bnsProviders: ['http://127.0.0.1:3999'],
  };
  const peer = await Peer.create({ resolver });
  const r: ResolveReport = await peer.resolve('alice.btc');
  const by: string | null = r.answeredBy;
  const verified: boolean = r.locators[0].verified;
  const code: number | undefined = r.steps[0].error?.code;
  const ms: number = r.steps[0].durationMs;
  const wire: Buffer = issueAdvert(Buffer.alloc(32), Buffer.alloc(0), { locators: [], seq: 1, issuedAt: 0, ttlSecs: 60 });
  const ad: AdvertInfo = verifyAdvert(wire, 0, { principal: r.principal });
  console.log(by, verified, code, ms, ad.seq, decodeAdvert(wire).locators, r.name);
  await peer.close();
}

void readme;
void discovery;
void extended;
void observability;
void permissions;
void relays;
