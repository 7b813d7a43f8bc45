/**
 * A lab backend: answers HTTP on one port with its greeting, echoes
 * "<greeting> <line>" per line on a TCP port (long-lived connections), and
 * answers UDP datagrams with the greeting. Prints "ready" when listening.
 * Usage: node lab-backend.js GREETING HTTP_PORT TCP_PORT UDP_PORT
 */
import { createServer as createHttp } from 'node:http';
import { createServer as createTcp } from 'node:net';
import { createSocket } from 'node:dgram';

const [greeting = 'i am backend', httpPort = '8000', tcpPort = '8001', udpPort = '8053'] = process.argv.slice(2);

const http = createHttp((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`${greeting}\n`);
});
http.keepAliveTimeout = 60_000;

const tcp = createTcp((sock) => {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      sock.write(`${greeting} ${buf.slice(0, nl)}\n`);
      buf = buf.slice(nl + 1);
    }
  });
  sock.on('error', () => sock.destroy());
});

const udp = createSocket('udp4');
udp.on('message', (msg, rinfo) => udp.send(`${greeting} ${msg.toString().trim()}\n`, rinfo.port, rinfo.address));

// HTTP port 0: another server (nginx) answers HTTP in this VM.
let pending = Number(httpPort) === 0 ? 2 : 3;
const ready = (): void => {
  if (--pending === 0) process.stdout.write('ready\n');
};
if (Number(httpPort) !== 0) http.listen(Number(httpPort), '0.0.0.0', ready);
tcp.listen(Number(tcpPort), '0.0.0.0', ready);
udp.bind(Number(udpPort), '0.0.0.0', ready);
process.on('SIGTERM', () => process.exit(0));
