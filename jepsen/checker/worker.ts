// Worker thread of the linearizability checker: runs one key's task per message.

import { parentPort } from 'node:worker_threads';
import { runTask, type KeyTask } from './task';

if (!parentPort) throw new Error('jepsen/checker/worker must run in a worker thread');
const port = parentPort;
port.on('message', (task: KeyTask) => {
  try {
    port.postMessage({ ok: true, result: runTask(task) });
  } catch (e) {
    port.postMessage({ ok: false, id: task.id, error: (e as Error).stack ?? String(e) });
  }
});
