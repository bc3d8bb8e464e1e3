// `npm run bench -- --cpu-prof DIR`: preloaded into Keel's members (NODE_OPTIONS=--require this file; node
// refuses --cpu-prof itself in NODE_OPTIONS). In a `keel node` process it starts V8's sampling profiler and,
// when the member exits (SIGTERM from `keel cluster down` closes it cleanly), writes
// DIR/<member name>-<pid>.cpuprofile (open it in Chrome DevTools or speedscope). Any other process
// (`keel cluster up` itself) is left alone.

import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';

const dir = process.env.KEEL_BENCH_CPU_PROF_DIR;
const argv = process.argv.slice(2);

if (dir && argv[0] === 'node') {
  const i = argv.indexOf('--name');
  const name = i >= 0 ? argv[i + 1] : 'member';
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable', () => {
    session.post('Profiler.setSamplingInterval', { interval: 500 }, () => {
      session.post('Profiler.start');
    });
  });
  process.on('exit', () => {
    // A session on this thread answers synchronously, so this completes before the process ends.
    session.post('Profiler.stop', (err, res) => {
      if (err || !res) return;
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, `${name}-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
