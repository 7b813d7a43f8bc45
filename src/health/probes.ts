/**
 * The probes themselves. TCP and UDP go out of the backend's VIF as raw frames
 * (the way OVN's service monitors reach backends the host cannot route to);
 * HTTP uses the host's own stack.
 */
import { request } from 'node:http';
import { formatIPv4 } from '../addr.js';
import {
  IPPROTO_UDP,
  randomPort,
  randomU32,
  TCP_ACK,
  TCP_RST,
  TCP_SYN,
  tcpFrame,
  udpFrame,
  type Ipv4Addrs,
  type Packet,
} from './frames.js';
import type { ProbePort } from './port.js';
import type { HttpProbe, ProbeResult, UdpProbe } from './types.js';

export interface RawProbeTarget {
  port: ProbePort;
  srcIp: number;
  srcMac: Buffer;
  dstIp: number;
  dport: number;
  timeoutMs: number;
}

const ICMP_UNREACH_CODES: Record<number, string> = {
  0: 'network unreachable',
  1: 'host unreachable',
  2: 'protocol unreachable',
  3: 'port unreachable',
  9: 'network prohibited',
  10: 'host prohibited',
  13: 'communication prohibited',
};

function icmpReason(p: Packet): string {
  if (p.kind !== 'icmp') return p.kind;
  if (p.type === 3) return `ICMP ${ICMP_UNREACH_CODES[p.code] ?? `unreachable (code ${p.code})`}`;
  return `ICMP type ${p.type} code ${p.code}`;
}

/** Resolves the backend's MAC within the probe's budget; a failure result when nobody answers. */
async function addrs(t: RawProbeTarget, started: number): Promise<Ipv4Addrs | ProbeResult> {
  const mac = await t.port.resolve(t.dstIp, t.srcIp, t.srcMac, t.timeoutMs);
  if (!mac) {
    return { ok: false, reason: `no ARP answer for ${formatIPv4(t.dstIp)} within ${t.timeoutMs / 1000} s`, ms: Date.now() - started };
  }
  return { ethSrc: t.srcMac, ethDst: mac, src: t.srcIp, dst: t.dstIp };
}

/** TCP SYN: SYN-ACK = up (the half-open connection is reset at once), RST = down, silence = down. */
export async function tcpSynProbe(t: RawProbeTarget): Promise<ProbeResult> {
  const started = Date.now();
  const a = await addrs(t, started);
  if ('ok' in a) return a;
  const sport = randomPort();
  const seq = randomU32();
  const syn = tcpFrame(a, { sport, dport: t.dport, seq, ack: 0, flags: TCP_SYN });
  const left = Math.max(1, t.timeoutMs - (Date.now() - started));
  const p = await t.port.exchange(
    syn,
    (pk) =>
      (pk.kind === 'tcp' && pk.src === t.dstIp && pk.dst === t.srcIp && pk.sport === t.dport && pk.dport === sport) ||
      (pk.kind === 'icmp' && pk.type === 3 && pk.quote !== null && pk.quote.src === t.srcIp && pk.quote.dst === t.dstIp &&
        pk.quote.sport === sport && pk.quote.dport === t.dport),
    left,
  );
  const ms = Date.now() - started;
  if (!p) {
    t.port.forget(t.dstIp);
    return { ok: false, reason: `no answer within ${t.timeoutMs / 1000} s`, ms };
  }
  if (p.kind === 'tcp') {
    if (p.flags & TCP_RST) return { ok: false, reason: 'RST', ms };
    if ((p.flags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK) && p.ack === ((seq + 1) >>> 0)) {
      try {
        t.port.send(tcpFrame(a, { sport, dport: t.dport, seq: p.ack, ack: 0, flags: TCP_RST }));
      } catch {
        /* the backend's half-open connection times out by itself */
      }
      return { ok: true, reason: 'SYN-ACK', ms };
    }
    return { ok: false, reason: `unexpected TCP flags 0x${p.flags.toString(16)}`, ms };
  }
  return { ok: false, reason: icmpReason(p), ms };
}

/** UDP: a datagram back = up; ICMP unreachable = down; silence = per `no_reply` (default down). */
export async function udpProbe(t: RawProbeTarget, cfg: UdpProbe): Promise<ProbeResult> {
  const started = Date.now();
  const a = await addrs(t, started);
  if ('ok' in a) return a;
  const sport = randomPort();
  const payload = Buffer.from(cfg.payload ?? 'xlb health check\n');
  const left = Math.max(1, t.timeoutMs - (Date.now() - started));
  const p = await t.port.exchange(
    udpFrame(a, { sport, dport: t.dport, payload }),
    (pk) =>
      (pk.kind === 'udp' && pk.src === t.dstIp && pk.dst === t.srcIp && pk.sport === t.dport && pk.dport === sport) ||
      (pk.kind === 'icmp' && pk.type === 3 && pk.quote !== null && pk.quote.proto === IPPROTO_UDP &&
        pk.quote.src === t.srcIp && pk.quote.dst === t.dstIp && pk.quote.sport === sport && pk.quote.dport === t.dport),
    left,
  );
  const ms = Date.now() - started;
  if (!p) {
    const ok = cfg.no_reply === 'success';
    return { ok, reason: `no answer within ${t.timeoutMs / 1000} s`, ms };
  }
  if (p.kind === 'udp') return { ok: true, reason: 'UDP answer', ms };
  return { ok: false, reason: icmpReason(p), ms };
}

/** HTTP GET http://BACKEND/PATH through the host's stack; up iff the status is the expected one. */
export function httpProbe(backend: string, cfg: HttpProbe, timeoutMs: number): Promise<ProbeResult> {
  const started = Date.now();
  const sep = backend.lastIndexOf(':');
  const host = sep < 0 ? backend : backend.slice(0, sep);
  const port = sep < 0 ? 80 : Number(backend.slice(sep + 1));
  const expect = cfg.expect_status ?? 200;
  return new Promise<ProbeResult>((resolve) => {
    let done = false;
    const finish = (ok: boolean, reason: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ ok, reason, ms: Date.now() - started });
    };
    const req = request(
      { host, port, path: cfg.path ?? '/', method: 'GET', agent: false, headers: { host: cfg.host ?? backend, connection: 'close' } },
      (res) => {
        res.resume();
        const status = res.statusCode ?? 0;
        finish(status === expect, `HTTP ${status}${status === expect ? '' : ` (expected ${expect})`}`);
      },
    );
    const timer = setTimeout(() => finish(false, `no HTTP answer within ${timeoutMs / 1000} s`), timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => finish(false, `HTTP: ${e.code ?? e.message}`));
    req.end();
  });
}
