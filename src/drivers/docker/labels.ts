/**
 * The labels corral puts on what it creates on the engine. `corral.server` says which corral
 * server owns a container (several may share one engine), so re-adoption and orphan removal
 * never touch another server's containers.
 */
export const LABEL = {
  server: 'corral.server',
  kind: 'corral.kind',
  owner: 'corral.owner',
  instance: 'corral.instance',
  generation: 'corral.generation',
} as const;

export type ContainerKind = 'instance' | 'job';

/** A `filters` value for listContainers: everything of `kind` this server owns. */
export function ownedBy(serverId: string, kind: ContainerKind): string {
  return JSON.stringify({ label: [`${LABEL.server}=${serverId}`, `${LABEL.kind}=${kind}`] });
}
