// One writer of the conntrack lock test (test/ct-lock.test.ts), a process of its own
// (the test pins it to one CPU): opens the pinned data plane, sends `count` SYNs of
// new source-NATed flows from `client` (source ports from `port`), and after each
// reads both of its entries back under the bucket lock, checking every field that
// ties a value to its key. Prints a JSON summary.
import { Dataplane } from '../../dist/src/dataplane.js';
import { decodeCt4Val, encodeCt4Key, XLB } from '../../dist/src/layout.js';
import { parseIPv4 } from '../../dist/src/addr.js';
import { tcpFrame } from '../../dist/bench/common.js';

const [pinRoot, clientS, vipS, snatS, portS, countS] = process.argv.slice(2);
const client = parseIPv4(clientS), vip = parseIPv4(vipS), snat = parseIPv4(snatS);
const dp = Dataplane.open({ pinRoot });
const out = { sent: 0, fwdSeen: 0, revSeen: 0, torn: [] };
try {
  for (let i = 0; i < Number(countS); i++) {
    const sport = Number(portS) + i;
    const r = dp.native.progTestRun(dp.progs.xlb_xdp_ingress, { data: tcpFrame(client, vip, sport, 80, 0x02), ifindex: 1, repeat: 1 });
    out.sent++;
    const backend = r.data.readUInt32BE(14 + 16);
    const f = dp.ct4NewLookup(encodeCt4Key({ saddr: client, daddr: vip, sport, dport: 80, proto: 6 }));
    if (f) {
      out.fwdSeen++;
      const v = decodeCt4Val(f);
      if (v.dir !== XLB.DIR_FWD || v.natAddr !== backend || v.natPort !== 8080 || v.snatAddr !== snat || v.snatPort !== sport) out.torn.push({ sport, fwd: v });
    }
    const b = dp.ct4NewLookup(encodeCt4Key({ saddr: backend, daddr: snat, sport: 8080, dport: sport, proto: 6 }));
    if (b) {
      out.revSeen++;
      const v = decodeCt4Val(b);
      if (v.dir !== XLB.DIR_REV || v.natAddr !== vip || v.natPort !== 80 || v.snatAddr !== client || v.snatPort !== sport) out.torn.push({ sport, rev: v });
    }
  }
} finally {
  dp.close();
}
console.log(JSON.stringify(out, (_, x) => (typeof x === 'bigint' ? x.toString() : x)));
