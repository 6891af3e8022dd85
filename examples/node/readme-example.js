// The snap2p README example, runnable in one process: a listener that echoes, and a
// second peer that dials it. Run: `npm install snap2p && node readme-example.js`.
'use strict';
const { Peer, formatPrincipal } = require('snap2p');

async function main() {
  // Create a peer (generates ephemeral wallet)
  const peer = await Peer.create();
  console.log(`I am: ${formatPrincipal(peer.principal)}`);

  // Listen for connections (port 0: any free port; the README uses 9000)
  const addr = await peer.listen(0);
  const port = addr.split(':').pop();

  peer.on('connection', (conn) => {
    console.log(`Connected: ${formatPrincipal(conn.remotePrincipal)}`);
    // Handle incoming streams
    conn.multiplexer.on('stream', (stream) => {
      stream.on('data', (data) => {
        console.log('Received:', data.toString());
        stream.write(data); // Echo back
      });
      stream.on('end', () => stream.end());
    });
  });

  // Or dial out to another peer
  const client = await Peer.create();
  const conn = await client.dial(`127.0.0.1:${port}`);
  const stream = conn.multiplexer.openStream('my-protocol');
  stream.write(Buffer.from('Hello!'));
  stream.end();

  const echoed = [];
  for await (const chunk of stream) echoed.push(chunk);
  const text = Buffer.concat(echoed).toString();
  console.log('Echoed:', text);
  if (text !== 'Hello!') throw new Error(`unexpected echo ${JSON.stringify(text)}`);

  await client.close();
  await peer.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
