/** Health checks: OVN's Load_Balancer_Health_Check semantics with raw-frame probes from backend VIFs. */
export { HealthChecker, healthOptions, DEFAULT_PROBE_MAC } from './checker.js';
export type { HealthCheckerOptions, BackendHealth, HealthChange, ProbeEvent } from './checker.js';
export { validateLbHealth, healthTargets, parseIpPortMapping, HealthConfigError } from './config.js';
export type { LbHealth, LbHealthCheck } from './config.js';
export { ProbePort, splitInterface } from './port.js';
export { parseMac, formatMac } from './frames.js';
export { tcpSynProbe, udpProbe, httpProbe } from './probes.js';
export * from './types.js';
