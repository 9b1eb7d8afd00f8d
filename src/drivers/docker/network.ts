/**
 * The bridge network instances with network access join: created when missing, with traffic
 * between its containers turned off, so one tenant's container cannot reach another's. A
 * network of that name made by someone else is used only if it keeps containers apart the
 * same way; otherwise starting anything on it fails, saying why.
 */
import { errors } from '../../core/errors.js';
import { statusOf, type Engine } from './engine.js';
import { LABEL } from './labels.js';

const ICC = 'com.docker.network.bridge.enable_icc';

export async function ensureNetwork(engine: Engine, name: string): Promise<void> {
  const existing = (await engine.listNetworks({ filters: JSON.stringify({ name: [name] }) })).find((n) => n.Name === name);
  if (existing) return refuseIfContainersMeet(existing);
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

/** A bridge with inter-container traffic off, or a config error naming the fix. */
function refuseIfContainersMeet(n: { Name: string; Driver?: string; Options?: Record<string, string> | null }): void {
  if (n.Driver === 'bridge' && n.Options?.[ICC] === 'false') return;
  throw errors.config(
    `Docker network "${n.Name}" lets its containers reach each other (${n.Driver === 'bridge' ? `${ICC} is not "false"` : `driver ${n.Driver ?? '?'}, not bridge`}), ` +
      `so one user's instance could reach another's: remove it and corral creates it, or create it with ` +
      `\`docker network create -o ${ICC}=false ${n.Name}\`, or set drivers.docker.network to another name`,
  );
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
