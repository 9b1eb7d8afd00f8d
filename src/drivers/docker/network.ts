/**
 * The bridge network instances with network access join: created when missing, with traffic
 * between its containers turned off, so one tenant's container cannot reach another's.
 */
import { statusOf, type Engine } from './engine.js';
import { LABEL } from './labels.js';

export async function ensureNetwork(engine: Engine, name: string): Promise<void> {
  const existing = await engine.listNetworks({ filters: JSON.stringify({ name: [name] }) });
  if (existing.some((n) => n.Name === name)) return;
  try {
    await engine.createNetwork({
      Name: name,
      Driver: 'bridge',
      CheckDuplicate: true,
      Labels: { [LABEL.kind]: 'network' },
      Options: { 'com.docker.network.bridge.enable_icc': 'false' },
    });
  } catch (e) {
    // Another server created it meanwhile.
    if (statusOf(e) !== 409) throw e;
  }
}

/** ensureNetwork once per process (again after a failure): for each start that needs it. */
export function networkEnsurer(engine: Engine, name: string): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => {
    done ??= ensureNetwork(engine, name).catch((e: unknown) => {
      done = undefined;
      throw e;
    });
    return done;
  };
}
