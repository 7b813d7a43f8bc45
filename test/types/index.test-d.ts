// Type tests of the public API (dist/src/index.d.ts). Run `npx tsc -p .` first, then `npx tsd`.
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd';
import {
  ApplyError,
  ConfigError,
  DEFAULT_MAGLEV_SIZE,
  DEFAULT_PIN_ROOT,
  DEFAULT_STATE_DIR,
  ERROR_CODES,
  XlbError,
  XlbNativeError,
  Xlb,
  compile,
  isNativeError,
  isPrime,
  lbVips,
  maglevTable,
  parseConfigText,
  validateConfig,
  type ApplyReport,
  type ApplySummary,
  type Compiled,
  type DesiredState,
  type Hook,
  type LoadBalancer,
  type NativeError,
  type Protocol,
  type ShowReport,
  type Stats,
  type Vip,
  type VipView,
  type XlbOptions,
} from '../../dist/src/index.js';

// Xlb
const xlb = Xlb.open();
expectType<Xlb>(xlb);
expectType<Xlb>(Xlb.open({ pinRoot: '/sys/fs/bpf/x', stateDir: '/run/x' }));
expectAssignable<XlbOptions>({ stateDir: '/tmp/x' });
expectError(Xlb.open({ stateDir: 42 }));

// apply takes anything (it validates) and reports.
expectType<ApplyReport>(xlb.apply({}));
expectType<ApplyReport>(xlb.apply(JSON.parse('{}') as unknown));
expectType<ApplyReport>(xlb.applyFile('/etc/xlb.yaml'));
const report = xlb.apply(null);
expectType<ApplySummary>(report.summary);
expectType<number>(report.summary.writes);
expectType<number>(report.summary.tables.swapped);
expectType<boolean>(report.unchanged);
expectType<string[]>(report.detached);
expectType<string[]>(report.warnings);

// show
const shown = xlb.show();
expectType<ShowReport>(shown);
expectType<VipView[]>(shown.vips);
expectType<bigint>(shown.vips[0].stats.packets);
expectType<Stats>(shown.vips[0].stats);
expectType<bigint>(shown.vips[0].backends[0].stats.bytes);
expectType<bigint>(shown.counters.packets);
expectError(shown.counters.no_such_counter);
expectType<number>(shown.conntrack.entries);
expectType<string[]>(shown.warnings);
expectType<string[]>(shown.vips[0].snat);
expectType<bigint>(shown.counters.snat);
expectType<number>(shown.conntrack.ipv6.entries);
expectNotAssignable<number>(shown.vips[0].stats.packets);
expectType<{ detached: string[] }>(Xlb.reset({ stateDir: '/tmp/x' }));

// config
expectType<DesiredState>(validateConfig({}));
expectType<DesiredState>(validateConfig(undefined));
expectType<DesiredState>(parseConfigText('{}', 'x.yaml'));
expectError(parseConfigText('{}'));
expectError(parseConfigText({}, 'x.yaml'));
const state = validateConfig({});
expectType<LoadBalancer[]>(state.load_balancers);
expectType<Protocol>(state.load_balancers[0].protocol);
expectType<Hook>(state.logical_switches[0].ports[0].hook);
expectType<Vip[]>(lbVips(state.load_balancers[0]));
expectType<Protocol | null>(lbVips(state.load_balancers[0])[0].protocol);
expectError(lbVips({ name: 'x' }));
expectAssignable<number>(DEFAULT_MAGLEV_SIZE);
expectNotAssignable<string>(DEFAULT_MAGLEV_SIZE);

// Hook and Protocol are closed unions.
// (src/config.ts: 'xdp-generic' forces skb-mode XDP.)
expectType<'auto' | 'tc' | 'xdp' | 'xdp-generic'>({} as Hook);
expectAssignable<Hook>('xdp');
expectAssignable<Hook>('auto');
expectAssignable<Hook>('tc');
expectNotAssignable<Hook>('generic');
expectNotAssignable<Hook>('native');
expectAssignable<Protocol>('udp');
expectNotAssignable<Protocol>('sctp');

// compile
expectType<Compiled>(compile(state));
expectType<Uint32Array>(compile(state).vips[0].table);
expectError(compile(state, { vips: {} }));

// maglev
expectType<Int32Array>(maglevTable(['a', 'b'], 7));
expectType<Int32Array>(maglevTable(['a', 'b'], 7, [1, 2]));
expectError(maglevTable(123, 7));
expectError(maglevTable(['a'], '7'));
expectType<boolean>(isPrime(7));
expectError(isPrime('7'));

// errors
const ce = new ConfigError('a.b', 'must be a string', 1);
expectType<string>(ce.field);
expectType<string>(ce.problem);
expectType<unknown>(ce.value);
expectType<string>(ce.code);
expectAssignable<XlbError>(ce);
expectAssignable<Error>(ce);
expectError(new ConfigError('a.b'));
const ae = new ApplyError('failed', { vip: 'lb1 10.0.0.1:80/tcp', cause: new Error('x') });
expectType<string | undefined>(ae.vip);
expectAssignable<XlbError>(ae);
expectError(new ApplyError('failed', { vip: 1 }));
expectAssignable<string>(ERROR_CODES.XLB_CONFIG);
expectAssignable<string>(ERROR_CODES.XLB_APPLY);
expectError(ERROR_CODES.XLB_NOPE);

// native errors
const e: unknown = new Error('x');
if (isNativeError(e)) {
  expectType<XlbNativeError>(e);
  expectType<string>(e.op);
  expectType<number>(e.errno);
}
expectAssignable<NativeError>(new XlbNativeError('x'));

// constants
expectAssignable<string>(DEFAULT_STATE_DIR);
expectAssignable<string>(DEFAULT_PIN_ROOT);
