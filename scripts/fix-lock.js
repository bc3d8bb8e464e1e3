#!/usr/bin/env node
// `npm install` here writes a package-lock.json that `npm ci` then refuses ("Missing: @msgpackr-extract/...
// from lock file"): msgpackr's optional native extractor lists one package per platform, and the registry
// reachable from this workplace does not serve the ones for other platforms, so npm leaves them out of the
// lock. This adds them back as optional, platform-restricted entries, which `npm ci` skips on Linux x64.
// msgpackr works without the extractor (pure JavaScript); it is only faster with it.
// Run after any `npm install`: node scripts/fix-lock.js
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const file = path.join(__dirname, '..', 'package-lock.json');
const lock = JSON.parse(fs.readFileSync(file, 'utf8'));
const extract = lock.packages['node_modules/msgpackr-extract'];
if (!extract) {
  console.log('no msgpackr-extract in the lock: nothing to do');
  process.exit(0);
}
const platform = { 'darwin-arm64': ['darwin', 'arm64'], 'darwin-x64': ['darwin', 'x64'], 'linux-arm': ['linux', 'arm'],
  'linux-arm64': ['linux', 'arm64'], 'linux-x64': ['linux', 'x64'], 'win32-x64': ['win32', 'x64'] };
let added = 0;
for (const [name, version] of Object.entries(extract.optionalDependencies || {})) {
  const key = `node_modules/${name}`;
  if (lock.packages[key]) continue;
  const suffix = name.replace('@msgpackr-extract/msgpackr-extract-', '');
  const [os, cpu] = platform[suffix] || [];
  if (!os) throw new Error(`unknown platform package ${name}`);
  lock.packages[key] = { version, cpu: [cpu], license: 'MIT', optional: true, os: [os] };
  added++;
}
const sorted = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0)));
lock.packages = sorted;
fs.writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`added ${added} optional platform entries to package-lock.json`);
