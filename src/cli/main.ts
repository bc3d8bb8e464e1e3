#!/usr/bin/env node
// The `keel` binary (package.json "bin").

import { runCli } from './app';
import { processIo } from './io';

runCli(process.argv.slice(2), processIo()).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`Error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
