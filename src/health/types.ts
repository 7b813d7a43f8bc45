/**
 * Health-check configuration: OVN's Load_Balancer_Health_Check options (same
 * names, same defaults, seconds; fractions allowed) and the probe kinds.
 */

/** OVN's Load_Balancer_Health_Check options. */
export interface HealthCheckOptions {
  /** Seconds between the end of one probe and the start of the next (OVN default 5). */
  interval: number;
  /** Seconds a probe waits for its answer, ARP resolution included (OVN default 20). */
  timeout: number;
  /** Consecutive successes that bring a down backend up (OVN default 3). */
  success_count: number;
  /** Consecutive failures that take an up backend down (OVN default 3). */
  failure_count: number;
}

/** OVN's defaults (ovn-nb(5), Load_Balancer_Health_Check). */
export const OVN_HEALTH_DEFAULTS: Readonly<HealthCheckOptions> = Object.freeze({
  interval: 5,
  timeout: 20,
  success_count: 3,
  failure_count: 3,
});

/** TCP: a SYN from the VIF; SYN-ACK = success (answered by RST), RST or silence = failure. */
export interface TcpProbe {
  type: 'tcp';
}

/** UDP: a datagram from the VIF; any datagram back = success, ICMP unreachable = failure. */
export interface UdpProbe {
  type: 'udp';
  /** Payload sent (default "xlb health check\n"). */
  payload?: string;
  /** What silence until the timeout counts as (default 'failure'; 'success' is the lenient
   *  reading for UDP services that never answer: only ICMP unreachable fails them). */
  no_reply?: 'failure' | 'success';
}

/** HTTP GET from the host's own stack (where the host routes to the backend). */
export interface HttpProbe {
  type: 'http';
  /** Request path (default "/"). */
  path?: string;
  /** Expected status code (default 200). */
  expect_status?: number;
  /** Host header (default the backend address). */
  host?: string;
}

export type ProbeConfig = TcpProbe | UdpProbe | HttpProbe;

/** Where TCP/UDP probes are sent from: the backend's VIF and a source address on its subnet
 *  (OVN's Load_Balancer ip_port_mappings: backend_ip → "lsp_name:source_ip"). */
export interface ProbeSource {
  /** The VIF as IFNAME or NETNS/IFNAME. */
  interface: string;
  /** IPv4 source address of the probes (must not be in use on that link). */
  ip: string;
}

/** One backend of one VIP to watch. */
export interface HealthTarget {
  /** The compiled VIP name, e.g. "lb1 172.16.255.62:8000/tcp" (CompiledVip.name). */
  vip: string;
  /** The backend as in the VIP, "A.B.C.D:PORT". */
  backend: string;
  protocol: 'tcp' | 'udp';
  /** Default: { type: protocol }. */
  probe?: ProbeConfig;
  /** Missing fields take OVN's defaults. */
  options?: Partial<HealthCheckOptions>;
  /** Required for tcp/udp probes. */
  source?: ProbeSource;
}

export interface ProbeResult {
  ok: boolean;
  /** What was seen: "SYN-ACK", "RST", "ICMP port unreachable", "HTTP 200", "no answer within 0.5 s", ... */
  reason: string;
  /** Duration of the probe in ms. */
  ms: number;
}

export type BackendState = 'up' | 'down';
