/** A corral with the golem-herder adapter on its own port (any free one), plus other config. */
import { startTestServer, type TestServer } from '../helpers/server.js';

export function startGolemServer(settings: Record<string, unknown>, config: Record<string, unknown> = {}): Promise<TestServer> {
  return startTestServer({
    instances: { restart: { initialDelayMs: 100, maxDelayMs: 1000 } },
    compat: { golemHerder: { enabled: true, port: 0, ...settings } },
    ...config,
  });
}
