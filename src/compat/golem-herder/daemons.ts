/**
 * Daemons are instances: spawn turns the form into an instance whose source is an archive
 * of the posted files plus a Procfile running `sh main.sh`, with one port per declared port,
 * restarted until killed and metered at `creditsPerSecond` (402 at zero, stopped when the
 * credits run out: src/core/credits). ls, kill (`wipe` deletes), attach (stdin in, output out)
 * are the instance calls; the reverse proxy is in daemon-proxy.ts.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tar from 'tar';
import type { RawData, WebSocket } from 'ws';
import type { User } from '../../core/accounts/index.js';
import type { Corral } from '../../core/corral.js';
import { errors, isCorralError } from '../../core/errors.js';
import { forwardBounded, type Instance } from '../../core/instances/index.js';
import { validateFiles, writeFiles } from '../../core/jobs/files.js';
import { requireScope } from '../../http/auth.js';
import { asBuffer } from '../../http/routes/relay.js';
import type { CompatPluginOptions } from '../index.js';
import { checkFields, fileFields, filesBodyLimit, formFields, type FormValue } from './forms.js';
import { dockerListing } from './listing.js';
import { ANY_METHOD, DAEMON_ENV, IMAGE_ENV, instanceNameFor } from './names.js';
import { TokenQuery, tokenParam } from './schemas.js';

const tags = ['golem-herder'];
const PROCESS = 'daemon';
/** How long spawn waits for the daemon to run, to report its ports. */
const SPAWN_WAIT_MS = 30_000;

/** Daemon names: what fits a URL segment, but not "." or "..". */
export const DAEMON_NAME = '^(?!\\.+$)[A-Za-z0-9_.-]{1,64}$';

const SpawnFields = Type.Object(
  {
    name: Type.String({ pattern: DAEMON_NAME }),
    image: Type.String({ minLength: 1, maxLength: 64 }),
    ports: Type.Optional(Type.String({ maxLength: 1024, description: 'JSON list of ports, e.g. [80, "8080"]' })),
  },
  { additionalProperties: false },
);
const NameParams = Type.Object({ name: Type.String({ pattern: DAEMON_NAME }) });

/** `[80, "8080"]` → [80, 8080]; anything else is a 400. */
function parsePorts(raw: string | undefined): number[] {
  if (raw === undefined || raw.trim() === '') return [];
  let list: unknown;
  try {
    list = JSON.parse(raw);
  } catch {
    throw errors.validation('field "ports" must be a JSON list of ports, e.g. [80, 8080]');
  }
  if (!Array.isArray(list) || list.length > 16) throw errors.validation('field "ports" must be a JSON list of at most 16 ports');
  const ports = list.map((p) => (typeof p === 'string' && /^\d{1,5}$/.test(p) ? Number(p) : p));
  for (const p of ports) {
    if (!Number.isInteger(p) || (p as number) < 1 || (p as number) > 65535) throw errors.validation(`field "ports": ${JSON.stringify(p)} is not a port`);
  }
  if (new Set(ports).size !== ports.length) throw errors.validation('field "ports" names a port twice');
  return ports as number[];
}

const portName = (p: number) => `p${p}`;

/** The old reply: name, the address the proxy reaches it at, and inside → host port. */
export function daemonInfo(name: string, i: Instance) {
  return {
    Name: name,
    Address: '127.0.0.1',
    Ports: Object.fromEntries(i.ports.map((p) => [p.name.slice(1), p.hostPort])),
  };
}

/** A daemon in ls, shaped like the Docker container listing old clients read. */
function listed(i: Instance) {
  const name = i.spec.env?.[DAEMON_ENV] ?? i.name;
  return { ...daemonInfo(name, i), ...dockerListing(i, name, i.spec.env?.[IMAGE_ENV] ?? '', { subject: i.owner }) };
}

/** Resolves when the instance is running (or has ended up somewhere it will not run from). */
export function waitForRun(corral: Corral, user: User, id: string, timeoutMs: number): Promise<Instance> {
  const service = corral.instances.service;
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      unsubscribe();
      service.get(user, id).then(resolve, reject);
    };
    const timer = setTimeout(finish, timeoutMs);
    const unsubscribe = service.subscribe(user, (e) => {
      if (e.id === id && (e.type === 'deleted' || ['running', 'failed', 'stopped', 'exited'].includes(e.state))) finish();
    });
    // It may have got there before the subscription.
    void service.get(user, id).then((i) => {
      if (['running', 'failed', 'stopped', 'exited'].includes(i.state)) finish();
    }, finish);
  });
}

/** The posted files (every field but name, image, ports) checked like a job's, as an archive with a Procfile. */
async function filesArchive(corral: Corral, fields: Record<string, FormValue>): Promise<{ dir: string; file: string }> {
  if (fields.Procfile !== undefined) throw errors.badFile('file "Procfile": the name is reserved (daemons run main.sh)');
  const input = fileFields(fields, Object.keys(SpawnFields.properties));
  const c = corral.config.jobs;
  const files = validateFiles(input, { maxFiles: c.maxFiles, maxTotalBytes: c.maxTotalFileBytes });
  const dir = await mkdtemp(path.join(tmpdir(), 'corral-daemon-'));
  try {
    const tree = path.join(dir, 'tree');
    await mkdir(tree, { mode: 0o700 });
    await writeFiles(tree, files);
    await writeFile(path.join(tree, 'Procfile'), `${PROCESS}: sh main.sh\n`);
    const file = path.join(dir, 'daemon.tar');
    await tar.c({ cwd: tree, file, portable: true }, ['.']);
    return { dir, file };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

export const daemonRoutes: FastifyPluginAsyncTypebox<CompatPluginOptions<'golemHerder'>> = async (app, { corral, settings }) => {
  const service = corral.instances.service;
  const find = (user: User, name: string) => service.get(user, instanceNameFor('daemon', name));

  app.post('/daemon/v1/spawn', { bodyLimit: filesBodyLimit(corral), schema: { summary: 'golem-herder: start a daemon (form: name, image, ports, files)', tags } }, async (request) => {
    const { user } = requireScope(request, 'instances:write');
    const fields = formFields(request);
    const { name, image, ports: rawPorts } = checkFields(SpawnFields, fields);
    const ports = parsePorts(rawPorts);
    // On the process driver `image` names a runtime (the interpreters a daemon may use).
    corral.jobs.runtimes.get(image);
    const archive = await filesArchive(corral, fields);
    let created: Instance;
    try {
      created = await service.create(
        user,
        {
          name: instanceNameFor('daemon', name),
          process: PROCESS,
          env: { [DAEMON_ENV]: name, [IMAGE_ENV]: image },
          // Declared as docker mapped them: the daemon listens on p itself, whatever the host port.
          ports: ports.map((p) => ({ name: portName(p), port: p })),
          restart: 'always',
          metered: true,
          creditsPerSecond: settings.creditsPerSecond,
        },
        { file: archive.file, fileName: 'daemon.tar' },
      );
    } catch (e) {
      if (isCorralError(e) && e.code === 'instance_exists') throw errors.conflict(`you already have a daemon named "${name}"`);
      throw e;
    } finally {
      await rm(archive.dir, { recursive: true, force: true });
    }
    const ran = await waitForRun(corral, user, created.id, SPAWN_WAIT_MS);
    if (ran.state !== 'running') {
      // One that failed for good is removed, so the same spawn can be tried again once fixed.
      if (ran.state === 'failed') await service.remove(user, ran.id);
      throw errors.invalidState(`daemon "${name}" did not start (${ran.state}${ran.lastError ? `: ${ran.lastError}` : ''})`);
    }
    return daemonInfo(name, ran);
  });

  app.route({
    method: [...ANY_METHOD],
    url: '/daemon/v1/ls',
    schema: { summary: "golem-herder: the caller's daemons, running and stopped", tags },
    handler: async (request) => {
      const { user } = requireScope(request, 'instances:read');
      const mine = (await service.list(user)).filter((i) => i.owner === user.name && i.spec.env?.[DAEMON_ENV] !== undefined);
      return mine.map(listed);
    },
  });

  app.route({
    method: [...ANY_METHOD],
    url: '/daemon/v1/kill/:name',
    schema: {
      summary: 'golem-herder: stop a daemon; wipe=true also removes it and its files',
      tags,
      params: NameParams,
      querystring: Type.Object({ wipe: Type.Optional(Type.Boolean()), ...tokenParam }, { additionalProperties: false }),
    },
    handler: async (request) => {
      const { user } = requireScope(request, 'instances:write');
      const { name } = request.params as { name: string };
      const instance = await find(user, name);
      const wipe = (request.query as { wipe?: boolean }).wipe ?? false;
      if (wipe) await service.remove(user, instance.id);
      else await service.stop(user, instance.id);
      return { Name: name, Killed: true, Wiped: wipe };
    },
  });

  app.get(
    '/daemon/v1/attach/:name',
    {
      websocket: true,
      schema: {
        summary: "golem-herder: WebSocket to a daemon's stdin (frames in) and output (text frames out)",
        tags,
        params: NameParams,
        querystring: TokenQuery,
      },
      preHandler: async (request) => {
        await find(requireScope(request, 'instances:write').user, (request.params as { name: string }).name);
      },
    },
    async (socket: WebSocket, request) => {
      const { user } = requireScope(request, 'instances:write');
      const { instance, log } = await service.output(user, instanceNameFor('daemon', request.params.name));
      const forward = forwardBounded(
        { send: (t) => socket.send(t), buffered: () => socket.bufferedAmount },
        corral.config.instances.logs.clientBufferBytes,
        (e) => `${e.line}\n`,
      );
      const unsubscribe = log.subscribe((e) => {
        if (e.stream !== 'corral') forward(e);
      });
      socket.on('message', (data: RawData, isBinary: boolean) => {
        const buf = asBuffer(data);
        service.writeStdin(instance.id, isBinary ? buf : buf.toString('utf8'));
      });
      socket.on('close', unsubscribe);
    },
  );
};
