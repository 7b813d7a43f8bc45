// UDP client for end-to-end tests: ONE flow (one socket, one source port) sending COUNT
// datagrams to HOST:PORT, each after the answer to the one before (or TIMEOUT_MS without
// one). Prints a JSON summary: {"sent": n, "answered": n, "from": ["addr:port", ...]}.
// Usage: node udp-flow.mjs HOST PORT COUNT TIMEOUT_MS
import { createSocket } from 'node:dgram';

const [host, port, count = '10', timeout = '2000'] = process.argv.slice(2);
const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
const out = { sent: 0, answered: 0, from: [] };
let waiting = null;
s.on('message', (_msg, rinfo) => {
  const from = `${rinfo.address}:${rinfo.port}`;
  if (!out.from.includes(from)) out.from.push(from);
  waiting?.(true);
});
await new Promise((resolve) => s.connect(Number(port), host, resolve));
for (let i = 0; i < Number(count); i++) {
  const answered = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), Number(timeout));
    waiting = (ok) => {
      clearTimeout(timer);
      resolve(ok);
    };
    s.send(`ping ${i}`);
    out.sent++;
  });
  waiting = null;
  if (answered) out.answered++;
}
s.close();
console.log(JSON.stringify(out));
