/**
 * golem-herder's README walk-through, as an old client ran it: plain HTTP form posts (undici
 * fetch) and `ws` WebSockets. Tokens with the token password, inspect, a daemon with a port
 * reached through the proxy, attach, kill and wipe, running out of credits, a python minion
 * with an output file; then bad input and auth refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli/run-cli.js';
import { ADMIN_PASSWORD, api, createUser, login, type TestServer } from '../helpers/server.js';
import { connect, refusedWith, send } from '../relay/ws-client.js';
import { eventually } from './helpers.js';
import { startGolemServer } from './golem-helpers.js';

const PASSWORD = 'token-password-for-tests';
let server: TestServer;
let root: string;

beforeAll(async () => {
  server = await startGolemServer({ tokenPassword: PASSWORD }, { credits: { intervalSeconds: 0.5 } });
  root = server.compat.golemHerder!;
});
afterAll(() => server?.stop());

/** A POST of form fields: urlencoded, or multipart when `multipart` (how a browser or curl -F sends files). */
async function post(path: string, fields: Record<string, string>, opts: { token?: string; multipart?: boolean; query?: string } = {}) {
  let body: URLSearchParams | FormData = new URLSearchParams(fields);
  if (opts.multipart) {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, new Blob([v]), k);
    body = form;
  }
  const res = await fetch(`${root}${path}${opts.query ?? ''}`, {
    method: 'POST',
    body,
    headers: opts.token ? { authorization: `bearer ${opts.token}` } : {},
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, text, json, type: res.headers.get('content-type') ?? '' };
}
const get = async (path: string) => {
  const res = await fetch(`${root}${path}`);
  const text = await res.text();
  return { status: res.status, text, json: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : undefined };
};
const token = async (email: string, credits?: number) => {
  const r = await post('/token/v1/generate', { password: PASSWORD, email, ...(credits !== undefined && { credits: String(credits) }) });
  expect(r.status).toBe(200);
  return r.json.token as string;
};

/** A daemon listening on its first port ($PORT) that echoes its stdin to stdout. */
const DAEMON_FILES = {
  'main.sh': 'exec python3 -u server.py\n',
  'server.py': `
import http.server, os, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from daemon " + self.path).encode()
        self.send_response(200); self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
def echo():
    for line in sys.stdin:
        print("echo: " + line.strip(), flush=True)
threading.Thread(target=echo, daemon=True).start()
print("daemon up", flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`,
};

describe('golem-herder tokens', () => {
  it('generates a token with the token password and inspects it; credits add up per email', async () => {
    const gen = await post('/token/v1/generate', { password: PASSWORD, email: 'alice@example.com', credits: '5' });
    expect(gen.json).toEqual({ token: expect.any(String), email: 'alice@example.com', credits: 5 });
    const first = await get(`/token/v1/inspect/${gen.json.token}`);
    expect(first.json).toEqual({ token: gen.json.token, email: 'alice@example.com', credits: 5 });
    // The query string works as well as the body, and credits default to 30000.
    const second = await post('/token/v1/generate', {}, { query: `?password=${PASSWORD}&email=alice@example.com` });
    expect(second.json.credits).toBe(30000);
    expect((await get(`/token/v1/inspect/${second.json.token}`)).json.credits).toBe(30005);
    expect((await get(`/token/v1/inspect/${gen.json.token}`)).json.credits).toBe(30005);
  });

  it('refuses a wrong password, bad fields, and inspecting anything but a golem-herder token', async () => {
    expect((await post('/token/v1/generate', { password: 'wrong-password', email: 'a@b' })).status).toBe(401);
    expect((await post('/token/v1/generate', { email: 'a@b' })).status).toBe(401);
    const noEmail = await post('/token/v1/generate', { password: PASSWORD });
    expect([noEmail.status, noEmail.json.error.message]).toEqual([400, 'field "email" is required']);
    expect((await post('/token/v1/generate', { password: PASSWORD, email: 'a@b', credits: '-1' })).status).toBe(400);
    expect((await post('/token/v1/generate', { password: PASSWORD, email: 'a@b', credits: 'lots' })).status).toBe(400);
    expect((await post('/token/v1/generate', { password: PASSWORD, email: 'a@b', colour: 'red' })).json.error.message).toContain('colour');
    expect((await get('/token/v1/inspect/not-a-token')).status).toBe(404);
    expect((await get('/token/v1/inspect/')).status).toBe(400);
    expect((await get(`/token/v1/inspect/${server.adminToken}`)).status).toBe(404);
  });
});

describe('corral token -e EMAIL -c CREDITS', () => {
  it('makes a golem-herder token while the server runs (admin only)', async () => {
    const env = { CORRAL_URL: server.url, CORRAL_TOKEN: server.adminToken, XDG_CONFIG_HOME: '/nonexistent' };
    const user = await createUser(server, 'not-an-admin');
    const [made, bad, refused] = await Promise.all([
      runCli(['token', '-e', 'cli@example.com', '-c', '7', '--json'], { env }),
      runCli(['token', '-e', 'cli@example.com', '-c', 'many'], { env }),
      runCli(['token', '-e', 'x@example.com'], { env: { ...env, CORRAL_TOKEN: user } }),
    ]);
    expect([made.code, made.stderr]).toEqual([0, '']);
    const { token: cliToken, ...rest } = JSON.parse(made.stdout);
    expect(rest).toEqual({ email: 'cli@example.com', credits: 7 });
    expect((await get(`/token/v1/inspect/${cliToken}`)).json).toMatchObject({ email: 'cli@example.com', credits: 7 });
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringContaining('bad_input')]);
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringContaining('forbidden')]);
    // The API behind it checks its body like any other.
    expect((await api(server, server.adminToken, 'POST', '/api/v1/golem-herder/tokens', { email: 'a@b', extra: 1 })).status).toBe(400);
  }, 60_000);
});

describe('golem-herder daemons', () => {
  let alice: string;
  beforeAll(async () => {
    alice = await token('daemon-owner@example.com', 100_000);
  });

  it('spawns a daemon with a port, reaches it through the proxy, attaches, kills and wipes it', async () => {
    const spawned = await post('/daemon/v1/spawn', { name: 'web', image: 'python', ports: '["8080"]', ...DAEMON_FILES }, { token: alice, multipart: true });
    expect(spawned.status, spawned.text).toBe(200);
    expect(spawned.json).toEqual({ Name: 'web', Address: '127.0.0.1', Ports: { '8080': expect.any(Number) } });

    const proxied = await eventually(
      () => fetch(`${root}/daemon/v1/proxy/web/greet?x=1`, { headers: { authorization: `Bearer ${alice}` } }).then(async (r) => [r.status, await r.text()]),
      ([status]) => status === 200,
    );
    expect(proxied[1]).toBe('hello from daemon /greet?x=1');
    // ?token= works too, and is not passed on to the daemon.
    expect(await (await fetch(`${root}/daemon/v1/proxy/web/?token=${alice}`)).text()).toBe('hello from daemon /');

    const ls = await fetch(`${root}/daemon/v1/ls?token=${alice}`).then((r) => r.json());
    expect(ls).toEqual([expect.objectContaining({ Name: 'web', State: 'running', Names: ['/web'], Ports: spawned.json.Ports })]);

    const attach = await connect(`${root.replace(/^http/, 'ws')}/daemon/v1/attach/web`, { authorization: `Bearer ${alice}` });
    await send(attach, 'hi there\n');
    let seen = '';
    while (!seen.includes('echo: hi there')) seen += (await attach.next()).text;
    attach.ws.close();

    const killed = await post('/daemon/v1/kill/web', {}, { token: alice });
    expect(killed.json).toEqual({ Name: 'web', Killed: true, Wiped: false });
    const stopped = await fetch(`${root}/daemon/v1/ls?token=${alice}`).then((r) => r.json());
    expect(stopped).toEqual([expect.objectContaining({ Name: 'web', State: 'exited' })]);
    expect((await fetch(`${root}/daemon/v1/proxy/web/?token=${alice}`)).status).toBe(503);

    await post('/daemon/v1/kill/web', {}, { token: alice, query: '?wipe=true' });
    expect(await fetch(`${root}/daemon/v1/ls?token=${alice}`).then((r) => r.json())).toEqual([]);
  });

  it('stops a daemon when its email runs out of credits and refuses new ones with 402', async () => {
    const poor = await token('poor@example.com', 2);
    const spawned = await post('/daemon/v1/spawn', { name: 'burner', image: 'sh', 'main.sh': 'exec sleep 600\n' }, { token: poor, multipart: true });
    expect(spawned.status, spawned.text).toBe(200);
    const ls = await eventually(
      () => fetch(`${root}/daemon/v1/ls?token=${poor}`).then((r) => r.json() as Promise<any[]>),
      (l) => l[0]?.State === 'exited',
      20_000,
    );
    expect(ls[0].Name).toBe('burner');
    // Charged for the time it ran: at zero or a little below (the last metering interval).
    expect((await get(`/token/v1/inspect/${poor}`)).json.credits).toBeLessThanOrEqual(0);
    const again = await post('/daemon/v1/spawn', { name: 'again', image: 'sh', 'main.sh': 'sleep 600\n' }, { token: poor, multipart: true });
    expect(again.status).toBe(402);
  });

  it('refuses bad spawns, other users and requests without a token', async () => {
    const bad = async (fields: Record<string, string>) => {
      const r = await post('/daemon/v1/spawn', { name: 'x', image: 'sh', 'main.sh': 'true\n', ...fields }, { token: alice, multipart: true });
      return [r.status, r.json?.error?.code];
    };
    expect(await bad({ ports: 'not json' })).toEqual([400, 'validation_failed']);
    expect(await bad({ ports: '[0]' })).toEqual([400, 'validation_failed']);
    expect(await bad({ ports: '[80, 80]' })).toEqual([400, 'validation_failed']);
    expect(await bad({ image: 'cobol' })).toEqual([400, 'unknown_runtime']);
    expect(await bad({ name: 'no/slash' })).toEqual([400, 'validation_failed']);
    expect(await bad({ '../escape': 'x' })).toEqual([400, 'bad_file']);
    expect(await bad({ Procfile: 'web: x' })).toEqual([400, 'bad_file']);
    const noMain = await post('/daemon/v1/spawn', { name: 'x', image: 'sh' }, { token: alice, multipart: true });
    expect([noMain.status, noMain.json.error.message]).toEqual([400, expect.stringContaining('main.sh')]);

    expect((await post('/daemon/v1/spawn', { name: 'x', image: 'sh', 'main.sh': 'true' })).status).toBe(401);
    expect((await fetch(`${root}/daemon/v1/ls`)).status).toBe(401);
    expect((await fetch(`${root}/daemon/v1/ls?token=forged.token.here`)).status).toBe(401);
    expect((await fetch(`${root}/daemon/v1/proxy/web/`)).status).toBe(401);
    expect(await refusedWith(`${root.replace(/^http/, 'ws')}/daemon/v1/attach/web`)).toBe(401);

    // Another user's daemon is not there for them.
    const spawned = await post('/daemon/v1/spawn', { name: 'mine', image: 'sh', 'main.sh': 'exec sleep 600\n' }, { token: alice, multipart: true });
    expect(spawned.status).toBe(200);
    const mallory = await token('mallory@example.com', 10);
    expect((await post('/daemon/v1/kill/mine', {}, { token: mallory })).status).toBe(404);
    expect((await fetch(`${root}/daemon/v1/proxy/mine/?token=${mallory}`)).status).toBe(404);
    expect(await fetch(`${root}/daemon/v1/ls?token=${mallory}`).then((r) => r.json())).toEqual([]);
    const dup = await post('/daemon/v1/spawn', { name: 'mine', image: 'sh', 'main.sh': 'true\n' }, { token: alice, multipart: true });
    expect(dup.status).toBe(409);
    const badWipe = await post('/daemon/v1/kill/mine', {}, { token: alice, query: '?wipe=maybe' });
    expect([badWipe.status, badWipe.json?.error?.code]).toEqual([400, 'validation_failed']);
    expect((await post('/daemon/v1/kill/mine', {}, { token: alice, query: '?wipe=true' })).json).toEqual({ Name: 'mine', Killed: true, Wiped: true });
  });
});

describe('golem-herder with auth on (the default)', () => {
  it('wants a token for golems and the relay sockets too', async () => {
    const wsRoot = root.replace(/^http/, 'ws');
    expect((await fetch(`${root}/golem/v1/spawn/doc`)).status).toBe(401);
    expect((await fetch(`${root}/golem/v1/ls`)).status).toBe(401);
    expect(await refusedWith(`${wsRoot}/golem/v1/connect/doc`)).toBe(401);
    expect(await refusedWith(`${wsRoot}/minion/v1/connect/doc?type=x`)).toBe(401);
    expect(await refusedWith(`${wsRoot}/golem/v1/connect-to/doc/00000000-0000-4000-8000-000000000000`)).toBe(401);
    // With a token, a golem's control socket is its owner's: another user cannot pair with its minions.
    const owner = await token('golem-owner@example.com', 10);
    const other = await token('someone-else@example.com', 10);
    const golem = await connect(`${wsRoot}/golem/v1/connect/doc-auth?token=${owner}`);
    const minion = await connect(`${wsRoot}/minion/v1/connect/doc-auth?type=t&token=${other}`);
    const hello = await golem.json();
    expect(await refusedWith(`${wsRoot}/golem/v1/connect-to/doc-auth/${hello.ID}?token=${other}`)).toBe(404);
    const link = await connect(`${wsRoot}/golem/v1/connect-to/doc-auth/${hello.ID}?token=${owner}`);
    expect(await minion.json()).toEqual({ Event: 'golem-connected' });
    link.ws.close();
    golem.ws.close();
    await minion.closed;
  });
});

describe('golem-herder from web pages', () => {
  it('answers CORS for any origin, and takes tokens only (not the session cookie)', async () => {
    const origin = { origin: 'http://documents.example' };
    const script = await fetch(`${root}/golem/v1/`, { headers: origin });
    expect(script.headers.get('access-control-allow-origin')).toBe('*');
    const preflight = await fetch(`${root}/minion/v1/spawn`, {
      method: 'OPTIONS',
      headers: { ...origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    const session = await login(server.url, 'admin', ADMIN_PASSWORD);
    const ls = await fetch(`${root}/daemon/v1/ls`, { headers: { cookie: session.cookie } });
    expect(ls.status).toBe(401);
  });
});

describe('golem-herder controlled minions', () => {
  let user: string;
  beforeAll(async () => {
    user = await createUser(server, 'minion-user');
  });

  it('runs a python minion and answers with its output file, or with StdOut and StdErr', async () => {
    const files = {
      'main.sh': 'python3 main.py\n',
      'main.py': 'import sys\nopen("result.txt", "w").write("six times seven is %d\\n" % (6 * 7))\nprint("printed")\nprint("warned", file=sys.stderr)\n',
    };
    const withOutput = await post('/minion/v1/spawn', { env: 'python', output: 'result.txt', ...files }, { token: user, multipart: true });
    expect(withOutput.status, withOutput.text).toBe(200);
    expect(withOutput.text).toBe('six times seven is 42\n');
    expect(withOutput.type).toMatch(/^text\/plain/);

    const streams = await post('/minion/v1/spawn', { env: 'python', ...files }, { token: user });
    expect(streams.json).toMatchObject({ StdOut: 'printed\n', StdErr: 'warned\n', exitCode: 0 });
  });

  it('refuses a missing or unknown env, a missing main.sh, unsafe file names, and no token', async () => {
    const bad = async (fields: Record<string, string>, token: string | null = user) => {
      const r = await post('/minion/v1/spawn', fields, { ...(token && { token }), multipart: true });
      return [r.status, r.json?.error?.code];
    };
    expect(await bad({ 'main.sh': 'true' })).toEqual([400, 'validation_failed']);
    expect(await bad({ env: 'cobol', 'main.sh': 'true' })).toEqual([400, 'unknown_runtime']);
    expect(await bad({ env: 'sh' })).toEqual([400, 'validation_failed']);
    expect(await bad({ env: 'sh', 'main.sh': 'true', '/etc/passwd': 'x' })).toEqual([400, 'bad_file']);
    expect(await bad({ env: 'sh', 'main.sh': 'true', output: '../x' })).toEqual([400, 'bad_file']);
    expect(await bad({ env: 'sh', 'main.sh': 'true' }, null)).toEqual([401, 'unauthenticated']);
    const twice = await post('/minion/v1/spawn', { 'main.sh': 'true' }, { token: user, query: '?env=sh&env=python' });
    expect([twice.status, twice.json?.error?.message]).toEqual([400, 'field "env" is given more than once']);
  });

  it('answers with the streams when the output file is missing or is "stdout", as the old herder did', async () => {
    const files = { env: 'sh', 'main.sh': 'echo out; echo err >&2' };
    for (const output of ['nothing.txt', 'stdout']) {
      const r = await post('/minion/v1/spawn', { ...files, output }, { token: user });
      expect([r.status, r.type], r.text).toEqual([200, expect.stringMatching(/^application\/json/)]);
      expect(r.json).toMatchObject({ StdOut: 'out\n', StdErr: 'err\n', exitCode: 0 });
    }
  });
});

describe('golem-herder controlled minion past its time limit', () => {
  let timed: TestServer;
  beforeAll(async () => {
    timed = await startGolemServer({ minionTimeoutSeconds: 1 });
  });
  afterAll(() => timed?.stop());

  it('answers 500, as the old herder did, with the streams so far', async () => {
    const res = await fetch(`${timed.compat.golemHerder!}/minion/v1/spawn`, {
      method: 'POST',
      headers: { authorization: `bearer ${timed.adminToken}` },
      body: new URLSearchParams({ env: 'sh', 'main.sh': 'echo started; exec sleep 1000' }),
    });
    const body = (await res.json()) as { error: { code: string; message: string; StdOut: string } };
    expect([res.status, body.error.code]).toEqual([500, 'minion_timeout']);
    expect(body.error.message).toContain('1 s limit');
    expect(body.error.StdOut).toBe('started\n');
  });
});
