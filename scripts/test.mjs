// `npm test`: the whole suite, as CI runs it. Sets up WebGPU (real GPU, else lavapipe) and Chromium first,
// then typecheck, lint, format check, and every vitest project (unit, gpu, e2e). Runs every step, prints a
// summary, and exits non-zero if any step failed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { SetupError, chromiumPath, gpuEnv } from './setup.mjs';

mkdirSync('test-results', { recursive: true });
const report = 'test-results/vitest.json';
const isolatedReport = 'test-results/vitest-tune.json';
// The tune tests run Dawn in several worker threads of one process. Under heavy load dawn.node has been seen to
// abort the whole process (a native napi_throw, not a test failure) while threads are torn down; they run on
// their own, and a run that died that way (no failing test, yet a failed run) is retried once, saying so.
const ISOLATED = 'test/gpu/tune.test.ts';

let env;
try {
  env = { ...process.env, ...gpuEnv(), CHROMIUM_PATH: process.env.CHROMIUM_PATH ?? chromiumPath() };
} catch (error) {
  if (error instanceof SetupError) {
    console.error(`tunelab setup: ${error.message}`);
    process.exit(1);
  }
  throw error;
}

const steps = [
  ['typecheck', 'npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']],
  [
    'svelte-check',
    'npx',
    ['svelte-check', '--tsconfig', './tsconfig.json', '--fail-on-warnings', '--output', 'human'],
  ],
  ['lint', 'npx', ['eslint', '.']],
  ['format', 'npx', ['prettier', '--check', '.']],
  [
    'tests',
    'npx',
    [
      'vitest',
      'run',
      '--exclude',
      ISOLATED,
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
    ],
  ],
];

const results = [];
for (const [name, command, args] of steps) {
  console.log(`\n▶ ${name}: ${command} ${args.join(' ')}`);
  const start = Date.now();
  const { status } = spawnSync(command, args, { stdio: 'inherit', env });
  results.push({ name, ok: status === 0, seconds: (Date.now() - start) / 1000 });
}

{
  const args = [
    'vitest',
    'run',
    ISOLATED,
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${isolatedReport}`,
  ];
  let ok = false;
  const start = Date.now();
  for (let attempt = 1; attempt <= 2 && !ok; attempt++) {
    rmSync(isolatedReport, { force: true });
    console.log(
      `\n▶ tune tests${attempt > 1 ? ' (retry: the previous process died in dawn.node)' : ''}: npx ${args.join(' ')}`,
    );
    const { status } = spawnSync('npx', args, { stdio: 'inherit', env });
    ok = status === 0;
    // A real test failure is not retried; only a run whose process died with no failing test is.
    if (
      !ok &&
      existsSync(isolatedReport) &&
      JSON.parse(readFileSync(isolatedReport, 'utf8')).numFailedTests > 0
    )
      break;
  }
  results.push({ name: 'tune tests', ok, seconds: (Date.now() - start) / 1000 });
}

console.log('\ntunelab test summary');
for (const { name, ok, seconds } of results) {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${name} (${seconds.toFixed(1)} s)`);
}
const failed = results.filter((r) => !r.ok).length;
{
  const totals = { passed: 0, failed: 0, skipped: 0 };
  for (const file of [report, isolatedReport].filter((f) => existsSync(f))) {
    const json = JSON.parse(readFileSync(file, 'utf8'));
    totals.passed += json.numPassedTests;
    totals.failed += json.numFailedTests;
    totals.skipped += json.numPendingTests + json.numTodoTests;
  }
  console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
}
console.log(`steps: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
