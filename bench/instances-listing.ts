/**
 * `GET /api/v1/instances` of N instances, next to its floor on this machine: the same rows
 * read by better-sqlite3 alone, and JSON text of the same size sent by a bare fastify route.
 * The rows are written straight into the database of a stopped server (desired and observed
 * `stopped`: nothing is spawned, so thousands take a second), then the server is started
 * again over them and listed. Not part of `npm run bench` (a tool for docs/instances.md,
 * "Scale"); run it under the bench lock:
 *
 *   node --import tsx bench/instances-listing.ts [n,n,…] [repeats]
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import Fastify from 'fastify';
import { ADMIN_PASSWORD, spawnServer, tempDir, tokenFor } from './child-server.js';
import { curlMs } from './lib.js';

const COUNTS = (process.argv[2] ?? '500,2000,5000').split(',').map(Number);
const REPEATS = Number(process.argv[3] ?? 15);
const OFF = { CORRAL_DRIVERS__PROCESS__KEEPER: 'false' };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The spec a bench create stores (defaults filled in as the service fills them). */
const specOf = (name: string) =>
  JSON.stringify({ name, command: ['sleep', '100000'], restart: 'never', env: {}, ports: [], stopSignal: 'SIGTERM', stopGraceSeconds: 10 });

function seed(file: string, n: number): void {
  const db = new SQLite(file);
  const owner = (db.prepare(`select id from users where name = 'admin'`).get() as { id: string }).id;
  const insert = db.prepare(
    `insert into instances (id, owner_id, name, spec, memory_limit, desired_state, observed_state, generation, restart_count,
       exit_code, exit_signal, last_error, handle, ports, created_at, updated_at, started_at)
     values (?, ?, ?, ?, null, 'stopped', 'stopped', 1, 0, null, 'SIGTERM', null, null, '[]', ?, ?, ?)`,
  );
  const now = Date.now();
  db.transaction(() => {
    for (let i = 0; i < n; i++) insert.run(randomUUID(), owner, `s-${i}`, specOf(`s-${i}`), now + i, now + i, now + i);
  })();
  db.close();
}

/** The listing's query by better-sqlite3 alone (same columns, join and order). */
function sqliteAlone(file: string): number[] {
  const db = new SQLite(file, { readonly: true });
  const stmt = db.prepare(
    `select i.id, i.owner_id, i.name, i.spec, i.desired_state, i.observed_state, i.generation, i.restart_count, i.exit_code,
       i.exit_signal, i.last_error, i.ports, i.created_at, i.updated_at, i.started_at, u.name as owner_name
     from instances i join users u on u.id = i.owner_id order by i.created_at, i.id`,
  );
  const ms: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const t = performance.now();
    stmt.all();
    ms.push(performance.now() - t);
  }
  db.close();
  return ms;
}

/** A bare fastify route sending `body` (as bytes, as corral's listing is), fetched REPEATS times. */
async function bareFastify(body: string): Promise<number[]> {
  const app = Fastify();
  const bytes = Buffer.from(body);
  app.get('/', (_req, reply) => reply.type('application/json; charset=utf-8').send(bytes));
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const ms = await timedGets(url, {});
  await app.close();
  return ms;
}

async function timedGets(url: string, headers: Record<string, string>, repeats = REPEATS): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < repeats; i++) ms.push(await curlMs(url, headers));
  return ms;
}

for (const n of COUNTS) {
  const data = await tempDir('corral-bench-list-');
  let server = await spawnServer(data, OFF);
  await server.kill('SIGTERM');
  const file = path.join(data, 'corral.db');
  seed(file, n);
  server = await spawnServer(data, OFF);
  const token = await tokenFor(server.url, 'admin', ADMIN_PASSWORD, 'list');
  const url = `${server.url}/api/v1/instances`;
  const [cold] = await timedGets(url, { authorization: `Bearer ${token}` }, 1);
  const first = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  const body = await first.text();
  const listed = (JSON.parse(body) as { instances: unknown[] }).instances.length;
  if (listed !== n) throw new Error(`listed ${listed} of ${n}`);
  const auth = { authorization: `Bearer ${token}` };
  const corral = await timedGets(url, auth);
  // After a change of one instance in ten (their rows read again).
  const db = new SQLite(file);
  db.prepare(`update instances set updated_at = updated_at + 1 where rowid % 10 = 0`).run();
  db.close();
  const [changed] = await timedGets(url, auth, 1);
  // The same request with nothing to list (a user's own, none): what any authenticated GET costs.
  const empty = await timedGets(`${server.url}/api/v1/tokens`, auth);
  const viaFetch: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const t = performance.now();
    await (await fetch(url, { headers: auth })).arrayBuffer();
    viaFetch.push(performance.now() - t);
  }
  await server.kill('SIGTERM');
  const alone = sqliteAlone(file);
  const bare = await bareFastify(body);
  await rm(data, { recursive: true, force: true });
  console.log(
    `${n}: corral ${median(corral).toFixed(1)} ms (first ${cold!.toFixed(1)}, after a tenth changed ${changed!.toFixed(1)}; by Node's fetch ${median(viaFetch).toFixed(1)}; GET /api/v1/tokens ${median(empty).toFixed(1)}) (${(body.length / 1e6).toFixed(2)} MB) | better-sqlite3 alone ${median(alone).toFixed(1)} ms | bare fastify, same bytes ${median(bare).toFixed(1)} ms  (medians of ${REPEATS})`,
  );
}
