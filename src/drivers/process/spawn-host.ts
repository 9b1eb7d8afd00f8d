/**
 * The spawn host: a small helper process that forks workloads for the server (see
 * spawner.ts for why). It speaks only over its IPC channel:
 *
 *   server → host  { id, argv, pipes, detached?, env, cwd? }    spawn (env is the child's whole
 *                                                               environment; none = refused)
 *                  { id, kill: signal }                         signal a child it spawned
 *   host → server  { id, pid } + one message per pipe carrying the pipe's handle
 *                  { id, error }                                the spawn failed
 *                  { id, exit: [code, signal] }                 the child exited
 *
 * The pipes' read ends are handed over unread: the server reads every byte itself.
 * When the server goes away (even by SIGKILL) the channel closes and the host exits, and
 * its children follow through their parent-death signal (bwrap --die-with-parent, setpriv).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { HostMessage, SpawnRequest, KillRequest } from './spawner.js';

const children = new Map<number, ChildProcess>();
const send = (m: HostMessage, handle?: Socket) => process.send!(m, handle);

function start(req: SpawnRequest): void {
  // Node would let a child without `env` inherit this host's environment: never fall back.
  if (!req.env || typeof req.env !== 'object') {
    send({ id: req.id, error: 'no environment given (children never inherit one)' });
    return;
  }
  let child: ChildProcess;
  try {
    child = spawn(req.argv[0]!, req.argv.slice(1), {
      stdio: Array.from({ length: req.pipes }, () => 'pipe' as const),
      detached: req.detached,
      env: req.env,
      cwd: req.cwd,
    });
  } catch (e) {
    send({ id: req.id, error: (e as Error).message });
    return;
  }
  if (child.pid === undefined) {
    child.once('error', (e) => send({ id: req.id, error: e.message }));
    return;
  }
  // net.Socket starts reading as soon as it is made: stop before the event loop runs, so
  // no byte is read here that the server would never see. Then take the pipes away from
  // the ChildProcess: at exit it would destroy stdin and resume the others (reading them)
  // while their handles may still wait in the send queue.
  const pipes = [...child.stdio] as (Socket & { _handle?: { readStop?: () => void } })[];
  for (const s of pipes) s._handle?.readStop?.();
  const detached = child as unknown as { stdin: null; stdout: null; stderr: null; stdio: null[] };
  detached.stdin = detached.stdout = detached.stderr = null;
  detached.stdio = pipes.map(() => null);
  children.set(req.id, child);
  send({ id: req.id, pid: child.pid });
  pipes.forEach((s, fd) => send({ id: req.id, fd }, s));
  child.once('exit', (code, signal) => {
    children.delete(req.id);
    send({ id: req.id, exit: [code, signal] });
  });
}

process.on('message', (m: SpawnRequest | KillRequest) => {
  if ('kill' in m) {
    try {
      children.get(m.id)?.kill(m.kill);
    } catch {
      /* an unknown signal name: nothing to do */
    }
  } else start(m);
});
// The server handles Ctrl-C and SIGTERM and stops its workloads gracefully: the host must
// outlive that, so it ignores them and leaves when the server disconnects.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => process.exit(0));
