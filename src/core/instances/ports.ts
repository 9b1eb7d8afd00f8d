/**
 * Host ports for instances: free ports on 127.0.0.1, found by letting the kernel pick one
 * (listen on port 0) and remembered while an instance holds them so two instances starting
 * at once never get the same one.
 */
import net from 'node:net';

export class PortAllocator {
  private readonly held = new Map<number, string>();

  /** One port per name; prefers `previous` ports when they are still free. */
  async allocate(
    owner: string,
    names: string[],
    previous: { name: string; hostPort: number }[] = [],
  ): Promise<{ name: string; hostPort: number }[]> {
    this.release(owner);
    const out: { name: string; hostPort: number }[] = [];
    for (const name of names) {
      const prev = previous.find((p) => p.name === name)?.hostPort;
      let port = prev !== undefined && !this.held.has(prev) && (await isFree(prev)) ? prev : undefined;
      for (let tries = 0; port === undefined && tries < 20; tries++) {
        const candidate = await freePort();
        if (!this.held.has(candidate)) port = candidate;
      }
      if (port === undefined) throw new Error('no free port on 127.0.0.1');
      this.held.set(port, owner);
      out.push({ name, hostPort: port });
    }
    return out;
  }

  release(owner: string): void {
    for (const [port, o] of this.held) if (o === owner) this.held.delete(port);
  }
}

/** A port the kernel says is free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * Each port as a workload sees it: the host port the proxy connects to, and the port the app
 * listens on inside its sandbox — the one the spec declares (an old daemon's fixed 8000), or
 * else the host port itself.
 */
export function workloadPorts(
  declared: { name: string; port?: number }[],
  allocated: { name: string; hostPort: number }[],
): { name: string; containerPort: number; hostPort: number }[] {
  return allocated.map((a) => ({ ...a, containerPort: declared.find((d) => d.name === a.name)?.port ?? a.hostPort }));
}

/** PORT = the first port, PORT_<NAME> for each: where the app should listen (inside its sandbox). */
export function portEnv(ports: { name: string; containerPort: number }[]): Record<string, string> {
  const env: Record<string, string> = {};
  if (ports[0]) env.PORT = String(ports[0].containerPort);
  for (const p of ports) env[`PORT_${p.name.toUpperCase()}`] = String(p.containerPort);
  return env;
}
