// Reads the TAP a pgTAP file prints and judges it the way pg_prove (TAP::Harness) does: every test ok
// (or TODO), a plan, as many tests as planned, in order, and the file ran to its end without an error.

const PLAN = /^1\.\.(\d+)\b/;
const TEST = /^(not )?ok\b\s*(\d+)?[^#]*(?:#\s*(TODO|SKIP)\b.*)?$/i;

/** @param {string[]} lines TAP output; @param {{text: string}|null} error the error that stopped the file */
export function judgeTap(lines, error) {
  let planned = null;
  let run = 0;
  let notOk = 0;
  const problems = [];
  for (const line of lines) {
    const plan = PLAN.exec(line);
    if (plan) {
      if (planned !== null) problems.push("more than one plan");
      planned = Number(plan[1]);
      continue;
    }
    const test = TEST.exec(line);
    if (!test) continue;
    run += 1;
    if (test[2] !== undefined && Number(test[2]) !== run) {
      problems.push(`test ${test[2]} out of sequence (expected ${run})`);
    }
    if (test[1] && test[3]?.toUpperCase() !== "TODO") notOk += 1;
  }
  if (planned === null) problems.push("no plan found in TAP output");
  else if (planned !== run) problems.push(`bad plan: planned ${planned} tests but ran ${run}`);
  if (error) problems.push(`stopped by ${error.text}`);
  const missing = planned !== null && planned > run ? planned - run : 0;
  let failed = notOk + missing;
  if (failed === 0 && problems.length) failed = 1;
  return { planned, run, failed, passed: run - notOk, problems };
}
