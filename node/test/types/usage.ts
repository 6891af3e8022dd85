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

void readme;
void extended;
