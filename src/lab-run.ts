/**
 * `xlb lab`: the main job on an embedded default. Builds the seed topology,
 * applies lb1 to vm3's switch, curls the VIP from vm3 and reports which backend
 * answered each request. Exit code 0 only when every request succeeded and
 * every backend answered at least once.
 */
import { Lab, LAB, LAB_INSTANCE, labConfig, BACKENDS } from './lab.js';
import { Xlb } from './xlb.js';
import type { Hook } from './config.js';

export interface LabRunOptions {
  requests: number;
  hook: Hook;
  keep?: boolean;
  down?: boolean;
}

export async function runLab(opts: LabRunOptions): Promise<number> {
  if (opts.down) {
    Xlb.reset(LAB_INSTANCE);
    Lab.destroyTopology();
    console.log('lab removed');
    return 0;
  }
  Xlb.reset(LAB_INSTANCE);
  console.log('building the seed topology: vm1, vm2 on "dmz"; vm3 on "inside"; xlb-hv routes between them');
  const lab = await Lab.create();
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const x = Xlb.open(LAB_INSTANCE);
  try {
    const report = x.apply(labConfig(opts.hook));
    for (const i of report.ifaces) {
      console.log(`xlb serves ${i.interface} with ${i.hook === 'xdp' ? `XDP (${i.xdpMode})` : 'tc'}: ${i.reason}`);
    }
    console.log(`VIP ${LAB.vip}:${LAB.port} → ${BACKENDS.map((b) => `${LAB.vms[b].ip}:${LAB.port}`).join(', ')}`);
    console.log(`curling http://${LAB.vip}:${LAB.port}/ from vm3 (${LAB.vms.vm3.ip}) ${opts.requests} times`);

    const totals = new Map<string, number>();
    let failed = 0;
    for (let i = 1; i <= opts.requests && !interrupted; i++) {
      const body = await lab.curl();
      if (interrupted) break;
      const who = body ?? 'FAILED';
      if (body === null) failed++;
      totals.set(who, (totals.get(who) ?? 0) + 1);
      console.log(`  ${String(i).padStart(4)}: ${who}`);
    }
    console.log('totals:');
    for (const [who, n] of [...totals].sort()) console.log(`  ${who}: ${n}`);
    const show = x.show();
    const vip = show.vips.find((v) => v.vip === `${LAB.vip}:${LAB.port}`);
    if (vip) {
      console.log(`xlb counters for the VIP: ${vip.stats.newConns} connections, ${vip.stats.packets} packets in, ${vip.stats.replyPackets} out`);
    }
    const allAnswered = BACKENDS.every((b) => totals.has(`i am ${b}`));
    if (interrupted) {
      console.log('interrupted');
      return 130;
    }
    if (failed > 0 || !allAnswered) {
      console.log(`FAIL: ${failed} request(s) failed; backends that answered: ${[...totals.keys()].filter((k) => k !== 'FAILED').join(', ') || 'none'}`);
      return 1;
    }
    console.log('OK: every request succeeded and both backends answered');
    return 0;
  } finally {
    x.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (opts.keep) {
      lab.release();
      console.log('lab left running; remove it with `xlb lab --down`');
    } else {
      Xlb.reset(LAB_INSTANCE);
      await lab.destroy();
      console.log('lab removed');
    }
  }
}
