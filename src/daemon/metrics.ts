/**
 * Prometheus metrics of the daemon (prom-client). Kernel counters are read
 * once per scrape (refresh) from `Xlb.show()`; label sets of VIPs and
 * backends that are gone disappear with them.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ShowReport } from '../xlb.js';

const VIP_LABELS = ['lb', 'vip', 'protocol'] as const;
const BACKEND_LABELS = ['lb', 'vip', 'protocol', 'backend'] as const;

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly applies: Counter<'source'>;
  readonly applyErrors: Counter<'source' | 'kind'>;
  readonly applyLatency: Histogram<'source'>;
  private readonly vip: Record<'packets' | 'bytes' | 'replyPackets' | 'replyBytes' | 'newConns' | 'drops' | 'rejects', Counter<(typeof VIP_LABELS)[number]>>;
  private readonly backend: Record<'packets' | 'bytes' | 'newConns' | 'drops', Counter<(typeof BACKEND_LABELS)[number]>>;
  private readonly ctEntries: Gauge;
  private readonly backendUp: Gauge<'vip' | 'backend' | 'probe'>;
  private readonly gcRemoved: Gauge;
  private readonly ctCapacity: Gauge;
  /** The IPv6 conntrack table (xlb_ct6), beside the IPv4 one above. */
  private readonly ct6Entries: Gauge;
  private readonly ct6Capacity: Gauge;
  private readonly global: Counter<'counter'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const r = [this.registry];
    const vipCounter = (name: string, help: string): Counter<(typeof VIP_LABELS)[number]> =>
      new Counter({ name, help, labelNames: VIP_LABELS, registers: r });
    const beCounter = (name: string, help: string): Counter<(typeof BACKEND_LABELS)[number]> =>
      new Counter({ name, help, labelNames: BACKEND_LABELS, registers: r });
    this.vip = {
      packets: vipCounter('xlb_vip_packets_total', 'Packets to the VIP (client to backend direction)'),
      bytes: vipCounter('xlb_vip_bytes_total', 'Bytes to the VIP (client to backend direction)'),
      replyPackets: vipCounter('xlb_vip_reply_packets_total', 'Reply packets from the backends of the VIP'),
      replyBytes: vipCounter('xlb_vip_reply_bytes_total', 'Reply bytes from the backends of the VIP'),
      newConns: vipCounter('xlb_vip_new_connections_total', 'New connections balanced to a backend'),
      drops: vipCounter('xlb_vip_drops_total', 'Packets dropped (no backend)'),
      rejects: vipCounter('xlb_vip_rejects_total', 'Packets answered with a TCP RST or ICMP port unreachable (reject=true, no backend)'),
    };
    this.backend = {
      packets: beCounter('xlb_backend_packets_total', 'Packets sent to the backend'),
      bytes: beCounter('xlb_backend_bytes_total', 'Bytes sent to the backend'),
      newConns: beCounter('xlb_backend_new_connections_total', 'New connections balanced to the backend'),
      drops: beCounter('xlb_backend_drops_total', 'Packets for the backend dropped'),
    };
    this.ctEntries = new Gauge({ name: 'xlb_conntrack_entries', help: 'Conntrack entries in use (both directions)', registers: r });
    this.backendUp = new Gauge({
      name: 'xlb_backend_up',
      help: 'Health-check state of a backend: 1 up, 0 down (only health-checked backends)',
      labelNames: ['vip', 'backend', 'probe'],
      registers: r,
    });
    this.gcRemoved = new Gauge({ name: 'xlb_conntrack_gc_removed', help: 'Conntrack entries removed by the garbage collector since the daemon started', registers: r });
    this.ctCapacity = new Gauge({ name: 'xlb_conntrack_capacity', help: 'Conntrack table capacity (max entries)', registers: r });
    this.ct6Entries = new Gauge({ name: 'xlb_conntrack6_entries', help: 'IPv6 conntrack entries in use (both directions)', registers: r });
    this.ct6Capacity = new Gauge({ name: 'xlb_conntrack6_capacity', help: 'IPv6 conntrack table capacity (max entries)', registers: r });
    this.global = new Counter({ name: 'xlb_datapath_events_total', help: 'Data-plane global counters (parse outcomes, conntrack events, drops)', labelNames: ['counter'], registers: r });
    this.applies = new Counter({ name: 'xlb_apply_total', help: 'Applies of the merged desired state, by the source that triggered them', labelNames: ['source'], registers: r });
    this.applyErrors = new Counter({
      name: 'xlb_apply_errors_total',
      help: 'Rejected changes: kind="config" (validation) or "apply" (the data plane refused)',
      labelNames: ['source', 'kind'],
      registers: r,
    });
    this.applyLatency = new Histogram({
      name: 'xlb_apply_duration_seconds',
      help: 'Time to validate, compile and write one apply',
      labelNames: ['source'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: r,
    });
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'xlb_daemon_' });
  }

  /** Health-check states and GC totals (call before each scrape). */
  refreshDaemon(health: ReadonlyArray<{ vip: string; backend: string; probe: string; state: string }>, gcRemoved: number): void {
    this.backendUp.reset();
    for (const h of health) this.backendUp.set({ vip: h.vip, backend: h.backend, probe: h.probe }, h.state === 'up' ? 1 : 0);
    this.gcRemoved.set(gcRemoved);
  }

  /** Reads the kernel counters into the metrics (call before each scrape). */
  refresh(show: ShowReport | null): void {
    for (const c of Object.values(this.vip)) c.reset();
    for (const c of Object.values(this.backend)) c.reset();
    this.global.reset();
    if (!show) return;
    for (const v of show.vips) {
      const l = { lb: v.lb, vip: v.vip, protocol: v.protocol };
      this.vip.packets.inc(l, Number(v.stats.packets));
      this.vip.bytes.inc(l, Number(v.stats.bytes));
      this.vip.replyPackets.inc(l, Number(v.stats.replyPackets));
      this.vip.replyBytes.inc(l, Number(v.stats.replyBytes));
      this.vip.newConns.inc(l, Number(v.stats.newConns));
      this.vip.drops.inc(l, Number(v.stats.drops));
      this.vip.rejects.inc(l, Number(v.stats.rejects));
      for (const b of v.backends) {
        const bl = { ...l, backend: b.text };
        this.backend.packets.inc(bl, Number(b.stats.packets));
        this.backend.bytes.inc(bl, Number(b.stats.bytes));
        this.backend.newConns.inc(bl, Number(b.stats.newConns));
        this.backend.drops.inc(bl, Number(b.stats.drops));
      }
    }
    this.ctEntries.set(show.conntrack.entries);
    this.ctCapacity.set(show.conntrack.max);
    this.ct6Entries.set(show.conntrack.ipv6.entries);
    this.ct6Capacity.set(show.conntrack.ipv6.max);
    for (const [k, n] of Object.entries(show.counters)) this.global.inc({ counter: k }, Number(n));
  }
}
