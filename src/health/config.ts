/**
 * The health-check part of a load balancer's config, as proposed for xlb's
 * desired state (OVN's names; OVN keeps option values as strings, numbers are
 * accepted too):
 *
 *   load_balancers:
 *     - name: lb1
 *       vips: { "172.16.255.62:8000": "172.16.255.130:8000,172.16.255.131:8000" }
 *       ip_port_mappings:                   # OVN: backend_ip → "lsp_name:source_ip";
 *         "172.16.255.130": "xlb-hv/xlb-vm1-h:172.16.255.140"   # xlb: NETNS/IFNAME:source_ip
 *         "172.16.255.131": "xlb-hv/xlb-vm2-h:172.16.255.140"
 *       health_check:                       # OVN: Load_Balancer_Health_Check rows
 *         - vip: "172.16.255.62:8000"
 *           options: { interval: 5, timeout: 20, success_count: 3, failure_count: 3 }
 *           probe: { type: http, path: /healthz, expect_status: 200 }   # xlb extension; default: the LB protocol
 *
 * validateLbHealth() checks these two keys of one load balancer; healthTargets()
 * turns them and the compiled VIPs into HealthChecker targets.
 */
import { isIPv4 } from '../addr.js';
import type { Compiled } from '../compile.js';
import { healthOptions } from './checker.js';
import type { HealthCheckOptions, HealthTarget, ProbeConfig, ProbeSource } from './types.js';

export interface LbHealthCheck {
  /** The VIP as written in the load balancer's vips ("A.B.C.D:PORT"). */
  vip: string;
  options: HealthCheckOptions;
  probe?: ProbeConfig;
}

export interface LbHealth {
  ip_port_mappings: Record<string, ProbeSource>;
  health_check: LbHealthCheck[];
}

/** A health-check config error naming the field and the value. */
export class HealthConfigError extends RangeError {
  constructor(
    readonly field: string,
    readonly value: unknown,
    reason: string,
  ) {
    super(`${field}: ${reason} (got ${JSON.stringify(value)})`);
    this.name = 'HealthConfigError';
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** "NETNS/IFNAME:SOURCE_IP" or "IFNAME:SOURCE_IP" → { interface, ip }. */
export function parseIpPortMapping(value: unknown, field: string): ProbeSource {
  if (typeof value !== 'string') throw new HealthConfigError(field, value, 'must be "IFNAME:SOURCE_IP" or "NETNS/IFNAME:SOURCE_IP"');
  const sep = value.lastIndexOf(':');
  const iface = value.slice(0, Math.max(0, sep));
  const ip = value.slice(sep + 1);
  const ifname = iface.slice(iface.indexOf('/') + 1);
  if (sep <= 0 || !ifname || ifname.length > 15 || iface.split('/').length > 2 || iface.startsWith('/')) {
    throw new HealthConfigError(field, value, 'must be "IFNAME:SOURCE_IP" or "NETNS/IFNAME:SOURCE_IP"');
  }
  if (!isIPv4(ip)) throw new HealthConfigError(field, value, `source ${JSON.stringify(ip)} is not a valid IPv4 address`);
  return { interface: iface, ip };
}

function num(v: unknown): unknown {
  return typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
}

function validateProbe(v: unknown, field: string): ProbeConfig {
  if (!isObj(v)) throw new HealthConfigError(field, v, 'must be an object with a type (tcp, udp or http)');
  const allowed: Record<string, string[]> = { tcp: ['type'], udp: ['type', 'payload', 'no_reply'], http: ['type', 'path', 'expect_status', 'host'] };
  const type = v.type;
  if (typeof type !== 'string' || !(type in allowed)) throw new HealthConfigError(`${field}.type`, type, 'must be tcp, udp or http');
  for (const k of Object.keys(v)) if (!allowed[type].includes(k)) throw new HealthConfigError(`${field}.${k}`, v[k], `unknown key for a ${type} probe`);
  if (type === 'tcp') return { type };
  if (type === 'udp') {
    if (v.payload !== undefined && typeof v.payload !== 'string') throw new HealthConfigError(`${field}.payload`, v.payload, 'must be a string');
    if (v.no_reply !== undefined && v.no_reply !== 'failure' && v.no_reply !== 'success') {
      throw new HealthConfigError(`${field}.no_reply`, v.no_reply, 'must be failure or success');
    }
    return { type, ...(v.payload !== undefined ? { payload: v.payload as string } : {}), ...(v.no_reply !== undefined ? { no_reply: v.no_reply as 'failure' | 'success' } : {}) };
  }
  if (v.path !== undefined && (typeof v.path !== 'string' || !v.path.startsWith('/'))) throw new HealthConfigError(`${field}.path`, v.path, 'must start with /');
  const st = num(v.expect_status);
  if (st !== undefined && !(Number.isInteger(st) && (st as number) >= 100 && (st as number) <= 599)) {
    throw new HealthConfigError(`${field}.expect_status`, v.expect_status, 'must be an HTTP status code (100..599)');
  }
  if (v.host !== undefined && typeof v.host !== 'string') throw new HealthConfigError(`${field}.host`, v.host, 'must be a string');
  return {
    type: 'http',
    ...(v.path !== undefined ? { path: v.path as string } : {}),
    ...(st !== undefined ? { expect_status: st as number } : {}),
    ...(v.host !== undefined ? { host: v.host as string } : {}),
  };
}

/**
 * Validates `ip_port_mappings` and `health_check` of load_balancers[index]
 * (`lb` is the raw object; other keys are ignored here). All or nothing.
 */
export function validateLbHealth(lb: Record<string, unknown>, index: number): LbHealth {
  const at = `load_balancers[${index}]`;
  const out: LbHealth = { ip_port_mappings: {}, health_check: [] };
  const m = lb.ip_port_mappings;
  if (m !== undefined) {
    if (!isObj(m)) throw new HealthConfigError(`${at}.ip_port_mappings`, m, 'must map backend IPs to "NETNS/IFNAME:SOURCE_IP"');
    for (const [ip, v] of Object.entries(m)) {
      const f = `${at}.ip_port_mappings[${JSON.stringify(ip)}]`;
      if (!isIPv4(ip)) throw new HealthConfigError(f, ip, 'key must be a backend IPv4 address');
      out.ip_port_mappings[ip] = parseIpPortMapping(v, f);
    }
  }
  const hc = lb.health_check;
  if (hc !== undefined) {
    if (!Array.isArray(hc)) throw new HealthConfigError(`${at}.health_check`, hc, 'must be a list');
    hc.forEach((h: unknown, i) => {
      const f = `${at}.health_check[${i}]`;
      if (!isObj(h)) throw new HealthConfigError(f, h, 'must be an object { vip, options, probe }');
      for (const k of Object.keys(h)) if (!['vip', 'options', 'probe'].includes(k)) throw new HealthConfigError(`${f}.${k}`, h[k], 'unknown key');
      if (typeof h.vip !== 'string') throw new HealthConfigError(`${f}.vip`, h.vip, 'must be a VIP of this load balancer ("A.B.C.D:PORT")');
      const o = h.options ?? {};
      if (!isObj(o)) throw new HealthConfigError(`${f}.options`, o, 'must be an object');
      const raw: Partial<HealthCheckOptions> = {};
      for (const [k, v] of Object.entries(o)) {
        if (!['interval', 'timeout', 'success_count', 'failure_count'].includes(k)) throw new HealthConfigError(`${f}.options.${k}`, v, 'unknown option');
        (raw as Record<string, unknown>)[k] = num(v);
      }
      let options: HealthCheckOptions;
      try {
        options = healthOptions(raw);
      } catch (e) {
        const [k] = (e as Error).message.split(':');
        throw new HealthConfigError(`${f}.options.${k}`, (o as Record<string, unknown>)[k], (e as Error).message.slice(k.length + 2));
      }
      out.health_check.push({ vip: h.vip, options, ...(h.probe !== undefined ? { probe: validateProbe(h.probe, `${f}.probe`) } : {}) });
    });
  }
  return out;
}

/**
 * HealthChecker targets for the compiled VIPs that have a health check: every
 * backend of such a VIP. TCP/UDP probes need the backend's ip_port_mappings
 * entry (an error names the missing one); HTTP probes do not.
 */
export function healthTargets(compiled: Compiled, health: Readonly<Record<string, LbHealth>>): HealthTarget[] {
  const out: HealthTarget[] = [];
  for (const [lbName, h] of Object.entries(health)) {
    for (const [i, hc] of h.health_check.entries()) {
      const f = `load_balancers[${lbName}].health_check[${i}]`;
      const vips = compiled.vips.filter((v) => v.lb === lbName && v.vip === hc.vip);
      if (vips.length === 0) throw new HealthConfigError(`${f}.vip`, hc.vip, `is not a served VIP of load balancer ${lbName}`);
      for (const v of vips) {
        if (v.proto === 132) throw new HealthConfigError(`${f}.vip`, hc.vip, 'health checks probe TCP and UDP VIPs only (as OVN\'s service monitors), not SCTP');
        if (v.proto !== 6 && v.proto !== 17) throw new HealthConfigError(`${f}.vip`, hc.vip, 'health checks need a VIP with a port');
        const protocol = v.proto === 6 ? 'tcp' : 'udp';
        const probe = hc.probe ?? { type: protocol };
        for (const b of v.backends) {
          const ip = b.text.slice(0, b.text.lastIndexOf(':'));
          const source = h.ip_port_mappings[ip];
          if (!source && probe.type !== 'http') {
            throw new HealthConfigError(`load_balancers[${lbName}].ip_port_mappings`, ip, `backend ${b.text} of ${hc.vip} has no entry (needed by its ${probe.type} health check)`);
          }
          out.push({ vip: v.name, backend: b.text, protocol, probe, options: hc.options, ...(source ? { source } : {}) });
        }
      }
    }
  }
  return out;
}
