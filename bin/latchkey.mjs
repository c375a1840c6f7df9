#!/usr/bin/env node
// Runs the compiled dist/ when it is at least as new as every file in src/ and views/ (npm run build,
// also run by postinstall); otherwise runs src/ through tsx, so an edit is never shadowed
// by a stale build.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

const compiled = `${root}dist/src/cli/main.js`;
let main;
if (existsSync(compiled) && newest(`${root}dist`) >= Math.max(newest(`${root}src`), newest(`${root}views`))) {
  ({ main } = await import(compiled));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import('../src/cli/main.ts'));
}
process.exitCode = await main(process.argv.slice(2));
