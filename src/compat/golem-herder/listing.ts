/** How ls shows daemons and golems: the fields of Docker's container listing old clients read. */
import type { Instance } from '../../core/instances/index.js';

export function dockerListing(i: Instance, name: string, image: string, labels: Record<string, string>) {
  return {
    Id: i.id,
    Names: [`/${name}`],
    Image: image,
    State: i.state === 'running' ? 'running' : 'exited',
    Status: i.state,
    Created: Math.floor(Date.parse(i.createdAt) / 1000),
    Labels: labels,
  };
}
