// The chat page: dials a native `snap2p listen --ws` with the npm package's browser entry,
// shows both principals, and sends lines on a stream labelled `chat` (the CLI shows them as
// `alias: text` and sends the lines typed on its terminal back on the same stream).
import { Peer, KeySigner, walletSigner } from '/pkg/index.js';

const $ = (id) => document.getElementById(id);
const log = (text) => {
  $('log').textContent += `${text}\n`;
};

/** The user's wallet: a SIP-030 provider the extension injects. */
async function wallet() {
  const provider = window.LeatherProvider ?? window.XverseProviders?.StacksProvider;
  if (!provider) throw new Error('no Stacks wallet extension found: choose the demo key');
  const res = await provider.request('getAddresses');
  const stx = (res.result?.addresses ?? []).find((a) => a.symbol === 'STX' || a.address?.startsWith('S'));
  if (!stx) throw new Error('the wallet gave no Stacks address');
  return walletSigner({ principal: stx.address, provider, publicKey: stx.publicKey });
}

$('connect').onclick = async () => {
  $('connect').disabled = true;
  try {
    const useWallet = document.querySelector('input[name=signer]:checked').value === 'wallet';
    const signer = useWallet ? await wallet() : KeySigner.generate();
    const peer = await Peer.create({ signer });
    $('me').textContent = peer.principal;
    const conn = await peer.dial($('target').value.trim(), { invite: $('invite').value.trim() || undefined });
    $('them').textContent = conn.remotePrincipal + (conn.remoteAlias ? ` (${conn.remoteAlias.alias})` : '');
    conn.on('alias', (a) => ($('them').textContent = `${conn.remotePrincipal} (${a.alias})`));
    log(`connected in ${conn.handshakeMs.toFixed(0)} ms`);
    conn.on('close', (info) => log(`closed: ${info.name} ${info.message}`));
    const stream = conn.openStream('chat');
    const writer = stream.writable.getWriter();
    $('line').disabled = false;
    $('send').onsubmit = async (ev) => {
      ev.preventDefault();
      const text = $('line').value;
      $('line').value = '';
      await writer.write(new TextEncoder().encode(`${text}\n`));
      log(`me: ${text}`);
    };
    const decoder = new TextDecoder();
    let pending = '';
    for await (const chunk of stream.readable) {
      pending += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        log(`peer: ${pending.slice(0, nl)}`);
        pending = pending.slice(nl + 1);
      }
    }
    log('the peer finished the chat stream');
  } catch (e) {
    log(`error ${e.code ?? ''} ${e.name}: ${e.message}`);
    $('connect').disabled = false;
  }
};
