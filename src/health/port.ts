/**
 * A probe port: one AF_PACKET socket on one interface (a backend's VIF, as
 * NETNS/IFNAME), shared by every probe sent from it. One receive loop per port
 * runs while a probe waits; each received frame is
 *   1. answered if it is an ARP request for one of the port's source addresses
 *      (the backend must resolve the probe's source to answer it, as OVN's ARP
 *      responder does for the service monitor address), and learnt if it is
 *      any ARP from a backend;
 *   2. offered to the waiting probes' matchers (the first match takes it).
 * Backend MACs are resolved by ARP from the source address and cached.
 */
import type { XlbNative } from '../native.js';
import { formatIPv4 } from '../addr.js';
import { arpFrame, BROADCAST_MAC, parseFrame, type Packet } from './frames.js';

interface Waiter {
  match: (p: Packet) => boolean;
  resolve: (p: Packet | null) => void;
  timer: NodeJS.Timeout;
}

/** Splits "NETNS/IFNAME" or "IFNAME". */
export function splitInterface(s: string): { netns: string | null; ifname: string } {
  const i = s.indexOf('/');
  return i < 0 ? { netns: null, ifname: s } : { netns: s.slice(0, i), ifname: s.slice(i + 1) };
}

export interface ProbePortOptions {
  /** How long a resolved backend MAC is trusted (seconds; default 60). */
  arpTtl?: number;
}

export class ProbePort {
  readonly interface: string;
  private readonly native: XlbNative;
  private fd: number | null = null;
  private loop: Promise<void> | null = null;
  private closed = false;
  private readonly waiters = new Set<Waiter>();
  /** Source addresses (host order) answered for, with their MAC. */
  private readonly sources = new Map<number, Buffer>();
  private readonly arpCache = new Map<number, { mac: Buffer; at: number }>();
  private readonly resolving = new Map<number, Promise<Buffer | null>>();
  private readonly arpTtlMs: number;

  constructor(native: XlbNative, iface: string, opts: ProbePortOptions = {}) {
    this.native = native;
    this.interface = iface;
    this.arpTtlMs = (opts.arpTtl ?? 60) * 1000;
  }

  /** Opens the socket now (otherwise the first probe does); throws ENODEV etc. */
  open(): void {
    if (this.closed) throw new Error(`probe port ${this.interface} is closed`);
    if (this.fd !== null) return;
    const { netns, ifname } = splitInterface(this.interface);
    this.fd = this.native.packetOpen(netns, ifname).fd;
  }

  /** Answers ARP requests for `ip` with `mac` (while any probe on this port waits). */
  addSource(ip: number, mac: Buffer): void {
    this.sources.set(ip >>> 0, mac);
  }

  send(frame: Buffer): void {
    this.open();
    this.native.packetSend(this.fd!, frame);
  }

  /**
   * Registers a matcher, then sends `frame` (so no answer can be missed), and
   * resolves with the first matching packet, or null after timeoutMs.
   */
  exchange(frame: Buffer | null, match: (p: Packet) => boolean, timeoutMs: number): Promise<Packet | null> {
    this.open();
    return new Promise<Packet | null>((resolve, reject) => {
      const w: Waiter = {
        match,
        resolve: (p) => {
          clearTimeout(w.timer);
          this.waiters.delete(w);
          resolve(p);
        },
        timer: setTimeout(() => w.resolve(null), Math.max(0, timeoutMs)),
      };
      this.waiters.add(w);
      this.ensureLoop();
      if (frame) {
        try {
          this.native.packetSend(this.fd!, frame);
        } catch (e) {
          clearTimeout(w.timer);
          this.waiters.delete(w);
          reject(e);
        }
      }
    });
  }

  /** The MAC of `ip` on this port's link, resolved by ARP from `srcIp`/`srcMac`; null when nobody answers. */
  async resolve(ip: number, srcIp: number, srcMac: Buffer, timeoutMs: number): Promise<Buffer | null> {
    ip >>>= 0;
    const c = this.arpCache.get(ip);
    if (c && Date.now() - c.at < this.arpTtlMs) return c.mac;
    const pending = this.resolving.get(ip);
    if (pending) return pending;
    const req = arpFrame({ op: 1, ethDst: BROADCAST_MAC, senderMac: srcMac, senderIp: srcIp, targetMac: Buffer.alloc(6), targetIp: ip });
    const p = this.exchange(req, (pk) => pk.kind === 'arp' && pk.op === 2 && pk.senderIp === ip, timeoutMs)
      .then((pk) => {
        if (pk?.kind !== 'arp') return null;
        const mac = Buffer.from(pk.senderMac);
        this.arpCache.set(ip, { mac, at: Date.now() });
        return mac;
      })
      .finally(() => this.resolving.delete(ip));
    this.resolving.set(ip, p);
    return p;
  }

  /** Forgets a cached MAC (after a probe got no answer at all). */
  forget(ip: number): void {
    this.arpCache.delete(ip >>> 0);
  }

  private ensureLoop(): void {
    if (this.loop || this.closed) return;
    this.loop = this.run().finally(() => {
      this.loop = null;
      if (this.waiters.size > 0 && !this.closed) this.ensureLoop();
    });
  }

  private async run(): Promise<void> {
    while (this.waiters.size > 0 && !this.closed && this.fd !== null) {
      let frames: Buffer[];
      try {
        frames = await this.native.packetRecv(this.fd, 100, 64);
      } catch {
        // The socket failed (interface gone): the waiters time out.
        return;
      }
      for (const f of frames) this.dispatch(f);
    }
  }

  private dispatch(f: Buffer): void {
    const p = parseFrame(f);
    if (!p) return;
    if (p.kind === 'arp') {
      if (this.arpCache.has(p.senderIp) || this.resolving.has(p.senderIp)) {
        this.arpCache.set(p.senderIp, { mac: Buffer.from(p.senderMac), at: Date.now() });
      }
      const mac = this.sources.get(p.targetIp);
      if (p.op === 1 && mac && this.fd !== null) {
        try {
          this.native.packetSend(
            this.fd,
            arpFrame({ op: 2, ethDst: p.senderMac, senderMac: mac, senderIp: p.targetIp, targetMac: p.senderMac, targetIp: p.senderIp }),
          );
        } catch {
          /* the probe will time out */
        }
      }
    }
    for (const w of this.waiters) {
      if (w.match(p)) {
        w.resolve(p);
        return;
      }
    }
  }

  /** Fails pending probes (null), waits for the receive loop, closes the socket. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of [...this.waiters]) w.resolve(null);
    if (this.loop) await this.loop;
    if (this.fd !== null) {
      this.native.packetClose(this.fd);
      this.fd = null;
    }
  }

  toString(): string {
    return `probe port ${this.interface} (sources ${[...this.sources.keys()].map(formatIPv4).join(', ')})`;
  }
}
