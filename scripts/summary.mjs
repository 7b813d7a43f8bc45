// Prints the suite's closing line, "tests: N passed, N failed[, N skipped]",
// from vitest's JSON report plus tsd's exit code (the type tests count as one).
import { readFileSync } from 'node:fs';

const [file, tsdRc] = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed = r.numPassedTests;
  // Failed tests count each; files that failed with no failed test (an
  // import or hook error) count once.
  failed = r.numFailedTests;
  if (r.numFailedTests === 0 && r.numFailedTestSuites > 0) failed += r.numFailedTestSuites;
  skipped = r.numPendingTests + (r.numTodoTests ?? 0);
} catch {
  failed += 1; // no report: vitest did not finish
}
if (tsdRc === '0') passed += 1;
else failed += 1;
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
