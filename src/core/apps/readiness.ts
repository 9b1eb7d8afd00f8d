/**
 * Is a copy ready to serve? One probe: a TCP connect to its port on 127.0.0.1 that stays
 * open, or, when the app names a health path, an HTTP GET answered with 2xx or 3xx. Probes
 * only ever go to the copy's own loopback port.
 *
 * "Stays open": a sandboxed copy's host port is pasta's (src/drivers/process/network.ts),
 * which accepts at once and, while nothing listens inside the sandbox yet, closes the
 * connection a few milliseconds later. A connect alone would call such a copy ready.
 */
import http from 'node:http';
import net from 'node:net';

const PROBE_TIMEOUT_MS = 2_000;
/** How long an accepted connection must stay open to count (pasta closes within ~10 ms). */
const SETTLE_MS = 200;

export function probe(port: number, path: string | undefined): Promise<boolean> {
  return path === undefined ? connects(port) : answers(port, path);
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
    socket.once('connect', () => {
      socket.setTimeout(0);
      const settled = setTimeout(() => done(true), SETTLE_MS);
      socket.once('close', () => {
        clearTimeout(settled);
        done(false);
      });
    });
    socket.once('end', () => done(false));
    socket.once('error', () => done(false));
  });
}

function answers(port: number, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: PROBE_TIMEOUT_MS, headers: { 'user-agent': 'corral-readiness' } }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 400);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}
