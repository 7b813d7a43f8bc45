// A long-lived TCP client for end-to-end tests: connects once, sends COUNT
// lines INTERVAL_MS apart, prints each answer, exits 0 only if every line was
// answered on the same connection. Errors say how long after the start they
// came (ms), e.g. a refused connection.
// Usage: node tcp-client.mjs HOST PORT COUNT INTERVAL_MS [TIMEOUT_MS]
import { connect } from 'node:net';

const [host, port, count = '20', interval = '100', timeout = '5000'] = process.argv.slice(2);
const want = Number(count);
const start = Date.now();
let got = 0;
let buf = '';
const sock = connect({ host, port: Number(port) });
sock.setEncoding('utf8');
sock.setTimeout(Number(timeout), () => {
  console.error(`timeout after ${got} answers (${Date.now() - start} ms)`);
  process.exit(2);
});
sock.on('connect', () => {
  console.log('connected');
  let sent = 0;
  const t = setInterval(() => {
    sock.write(`line ${sent++}\n`);
    if (sent >= want) clearInterval(t);
  }, Number(interval));
});
sock.on('data', (d) => {
  buf += d;
  let nl;
  while ((nl = buf.indexOf('\n')) >= 0) {
    console.log(buf.slice(0, nl));
    buf = buf.slice(nl + 1);
    if (++got === want) {
      sock.end();
      process.exit(0);
    }
  }
});
sock.on('error', (e) => {
  console.error(`error after ${got} answers: ${e.message} (${Date.now() - start} ms)`);
  process.exit(3);
});
sock.on('close', () => {
  if (got < want) {
    console.error(`closed after ${got} answers`);
    process.exit(4);
  }
});
