/**
 * The public library entry of xlb: `import { Xlb, validateConfig } from 'xlb'`.
 * Everything else under src/ is internal and may change without notice.
 */
export { Xlb, DEFAULT_STATE_DIR } from './xlb.js';
export type { XlbOptions, ApplyReport, ShowReport, VipView, ServedIface, ConntrackEntry } from './xlb.js';

export { validateConfig, parseConfigText, lbVips, DEFAULT_MAGLEV_SIZE } from './config.js';
export type {
  DesiredState,
  LoadBalancer,
  LogicalSwitch,
  LogicalRouter,
  SwitchPort,
  RouterPort,
  NatRule,
  Vip,
  Backend,
  Protocol,
  Hook,
} from './config.js';

export { compile } from './compile.js';
export type { Ids, Compiled, CompiledIface, CompiledBackend, CompiledVip, CompiledVipEntry } from './compile.js';

export { maglevTable, isPrime } from './maglev.js';

export { XlbError, ConfigError, ApplyError, ERROR_CODES } from './errors.js';

export { XlbNativeError, isNativeError } from './native.js';
export type { NativeError } from './native.js';

export { DEFAULT_PIN_ROOT } from './dataplane.js';

export type { ApplySummary } from './writer.js';

export type { Stats } from './layout.js';
