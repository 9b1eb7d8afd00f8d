/**
 * no-new-privileges for swarm tasks. Docker containers get it from their HostConfig; a swarm
 * service can ask for it only through `ContainerSpec.Privileges.NoNewPrivileges`, which newer
 * engine APIs have (NNP_MIN_API). On an older engine (Debian's docker.io 20.10 speaks 1.41) a
 * task would run without it: a setuid binary in the image could raise the workload's
 * privileges. corral then refuses swarm instances unless the admin accepts that explicitly
 * (drivers.swarm.allowNewPrivileges), and `corral doctor` says which it is.
 */
import { errors } from '../../core/errors.js';

/** The first engine API version whose swarm ContainerSpec takes Privileges.NoNewPrivileges. */
export const NNP_MIN_API = '1.44';

const parts = (v: string) => v.split('.').map((n) => Number(n) || 0);

/** Whether an engine speaking API `apiVersion` sets no-new-privileges on swarm tasks. */
export function setsNoNewPrivileges(apiVersion: string): boolean {
  const [major = 0, minor = 0] = parts(apiVersion);
  const [minMajor = 0, minMinor = 0] = parts(NNP_MIN_API);
  return major > minMajor || (major === minMajor && minor >= minMinor);
}

/** The refusal when tasks would run without no-new-privileges and the admin did not accept it. */
export const newPrivilegesRefused = (apiVersion: string): Error =>
  errors.driverUnavailable(
    `swarm tasks would run without no-new-privileges: the Docker engine's API ${apiVersion} cannot set it on a service ` +
      `(needs ${NNP_MIN_API}); upgrade the engine, or accept it with drivers.swarm.allowNewPrivileges: true`,
  );

/** What `corral doctor` and the driver's isolation notes say about it. */
export function noNewPrivilegesNote(apiVersion: string, allowed: boolean): { ok: boolean; text: string } {
  if (setsNoNewPrivileges(apiVersion)) return { ok: true, text: `swarm tasks get no-new-privileges (engine API ${apiVersion})` };
  return allowed
    ? { ok: false, text: `swarm tasks run WITHOUT no-new-privileges (engine API ${apiVersion} < ${NNP_MIN_API}), accepted by drivers.swarm.allowNewPrivileges` }
    : { ok: false, text: `swarm instances are refused: engine API ${apiVersion} < ${NNP_MIN_API} cannot set no-new-privileges (drivers.swarm.allowNewPrivileges: true accepts it)` };
}
