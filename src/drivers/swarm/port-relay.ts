/**
 * Forwards 127.0.0.1:<hostPort> to a swarm task's port on the ports network
 * (ports-network.ts), which is how the proxy reaches it: nothing is published on any other
 * interface. Each port listens only once the task accepts connections there, so a client (or
 * an app deploy's readiness check) sees "connection refused" until the workload listens, as
 * with the other drivers.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Between two tries whether the task listens yet. */
const PROBE_MS = 100;
const CONNECT_TIMEOUT_MS = 2000;

export interface RelayedPort {
  hostPort: number;
  containerPort: number;
}

export class PortRelay {
  private readonly servers = new Set<Server>();
  private readonly sockets = new Set<Socket>();
  private closed = false;

  constructor(ports: RelayedPort[], private readonly address: string) {
    for (const p of ports) void this.open(p);
  }

  /** Resolves when every port listens (tests). */
  readonly listening: Promise<void>[] = [];

  private open(p: RelayedPort): Promise<void> {
    const done = (async () => {
      while (!this.closed && !(await this.accepts(p.containerPort))) await sleep(PROBE_MS);
      if (this.closed) return;
      const server = createServer((client) => this.pipe(client, p.containerPort));
      this.servers.add(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(p.hostPort, '127.0.0.1', () => resolve());
      }).catch(() => this.servers.delete(server)); // the port was taken meanwhile: the instance stays unreachable
    })();
    this.listening.push(done);
    return done;
  }

  private accepts(port: number): Promise<boolean> {
    return new Promise((resolve) => {
      const s = connect({ host: this.address, port, timeout: CONNECT_TIMEOUT_MS });
      const end = (ok: boolean) => {
        s.destroy();
        resolve(ok);
      };
      s.once('connect', () => end(true));
      s.once('error', () => end(false));
      s.once('timeout', () => end(false));
    });
  }

  private pipe(client: Socket, port: number): void {
    const upstream = connect({ host: this.address, port });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  close(): void {
    this.closed = true;
    for (const s of this.servers) s.close();
    for (const s of this.sockets) s.destroy();
  }
}
