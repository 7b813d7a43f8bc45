/**
 * A lab backend: answers HTTP on one port with its greeting, echoes
 * "<greeting> <line>" per line on a TCP port (long-lived connections), and
 * answers UDP datagrams with the greeting. Prints "ready" when listening.
 * Usage: node lab-backend.js GREETING HTTP_PORT TCP_PORT UDP_PORT [v6]
 * With "v6" the same servers also answer on IPv6.
 */
import { createServer as createHttp, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcp, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';

const [greeting = 'i am backend', httpPort = '8000', tcpPort = '8001', udpPort = '8053', family = ''] = process.argv.slice(2);
/** "v6": also listen on IPv6 (the lab's ipv6 option). */
const v6 = family === 'v6';

const onHttp = (_req: IncomingMessage, res: ServerResponse): void => {
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`${greeting}\n`);
};
const http = createHttp(onHttp);
http.keepAliveTimeout = 60_000;

const onTcp = (sock: Socket): void => {
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
};
const tcp = createTcp(onTcp);

const udp = createSocket('udp4');
udp.on('message', (msg, rinfo) => udp.send(`${greeting} ${msg.toString().trim()}\n`, rinfo.port, rinfo.address));

// HTTP port 0: another server (nginx) answers HTTP in this VM.
let pending = (Number(httpPort) === 0 ? 2 : 3) * (v6 ? 2 : 1);
const ready = (): void => {
  if (--pending === 0) process.stdout.write('ready\n');
};
if (Number(httpPort) !== 0) http.listen(Number(httpPort), '0.0.0.0', ready);
tcp.listen(Number(tcpPort), '0.0.0.0', ready);
udp.bind(Number(udpPort), '0.0.0.0', ready);
if (v6) {
  const udp6 = createSocket({ type: 'udp6', ipv6Only: true });
  udp6.on('message', (msg, rinfo) => udp6.send(`${greeting} ${msg.toString().trim()}\n`, rinfo.port, rinfo.address));
  if (Number(httpPort) !== 0) createHttp(onHttp).listen({ port: Number(httpPort), host: '::', ipv6Only: true }, ready);
  createTcp(onTcp).listen({ port: Number(tcpPort), host: '::', ipv6Only: true }, ready);
  udp6.bind(Number(udpPort), '::', ready);
}
process.on('SIGTERM', () => process.exit(0));
