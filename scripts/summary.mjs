// Prints the suite's closing line, "tests: N passed, N failed[, N skipped]",
// from vitest's JSON report plus the exit codes of tsd and of the tests'
// type-check (each counts as one test).
import { readFileSync } from 'node:fs';

const [file, ...rcs] = process.argv.slice(2);
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
for (const rc of rcs) {
  if (rc === '0') passed += 1;
  else failed += 1;
}
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
