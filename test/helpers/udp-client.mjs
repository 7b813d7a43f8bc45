// UDP client for end-to-end tests: from COUNT different source ports, sends one
// datagram each to HOST:PORT on a connected socket (so only an answer from
// HOST:PORT itself is accepted) and prints each answer, "timeout", or the
// socket's error (e.g. "error ECONNREFUSED" after an ICMP port unreachable). HOST may be IPv6.
// Usage: node udp-client.mjs HOST PORT COUNT TIMEOUT_MS
import { createSocket } from 'node:dgram';

const [host, port, count = '10', timeout = '2000'] = process.argv.slice(2);

function one(i) {
  return new Promise((resolve) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve('timeout');
    }, Number(timeout));
    s.on('error', (e) => {
      clearTimeout(timer);
      s.close();
      resolve(`error ${e.code ?? e.message}`);
    });
    s.on('message', (msg, rinfo) => {
      clearTimeout(timer);
      s.close();
      resolve(`${msg.toString().trim()} from ${rinfo.address}:${rinfo.port}`);
    });
    s.connect(Number(port), host, () => s.send(`ping ${i}`));
  });
}

for (let i = 0; i < Number(count); i++) console.log(await one(i));
