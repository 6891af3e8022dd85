// A two-terminal chat over snap2p, like the TypeScript demo's `listen` / `chat`:
//   node chat.js listen 9000
//   node chat.js chat 127.0.0.1:9000 [--invite HEX]
// Lines typed on stdin go to the other side; Ctrl-D ends the chat.
'use strict';
const readline = require('node:readline');
const { Peer, formatPrincipal } = require('snap2p');

function attach(stream, who) {
  readline.createInterface({ input: stream }).on('line', (line) => console.log(`${who}> ${line}`));
  const input = readline.createInterface({ input: process.stdin });
  input.on('line', (line) => stream.write(`${line}\n`));
  input.on('close', () => stream.end());
  stream.on('end', () => input.close());
  stream.on('error', (e) => console.error(`stream error ${e.name} (${e.code}): ${e.message}`));
}

async function main() {
  const [mode, target, flag, invite] = process.argv.slice(2);
  const peer = await Peer.create();
  console.log(`I am: ${formatPrincipal(peer.principal)}`);
  if (mode === 'listen') {
    const addr = await peer.listen(Number(target ?? 9000));
    console.log(`listening on ${addr}`);
    peer.on('connection', (conn) => {
      console.log(`Connected: ${formatPrincipal(conn.remotePrincipal)}`);
      conn.multiplexer.once('stream', (stream) => {
        attach(stream, conn.remotePrincipal);
        stream.on('close', () => peer.close());
      });
    });
  } else if (mode === 'chat' && target) {
    const conn = await peer.dial(target, flag === '--invite' ? { invite } : {});
    console.log(`Connected: ${formatPrincipal(conn.remotePrincipal)}`);
    const stream = conn.multiplexer.openStream('chat');
    attach(stream, conn.remotePrincipal);
    stream.on('close', () => peer.close());
  } else {
    console.error('usage: node chat.js listen [port] | chat host:port [--invite HEX]');
    process.exitCode = 2;
    await peer.close();
  }
}

main().catch((e) => {
  console.error(`${e.name} (${e.code}): ${e.message}`);
  process.exit(1);
});
