/** Instances, proxy settings and jobs in the store: the same behaviour on SQLite and PostgreSQL. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InstanceSpec } from '../../src/core/instances/spec.js';
import type { Store } from '../../src/store/index.js';
import { queuedJobRow } from '../../src/store/jobs.js';
import { isUniqueViolation } from '../../src/store/dialect.js';
import { storeDialects } from '../helpers/postgres.js';
import { storeWithOwner } from './store-with-owner.js';

const spec = (name: string) => ({ name, command: ['sleep', '1'], env: {}, ports: [{ name: 'web' }] }) as unknown as InstanceSpec;

describe.each(storeDialects)('instances, proxy settings and jobs on $name', (dialect) => {
  let store: Store;
  let owner: string;
  beforeAll(async () => {
    ({ store, owner } = await storeWithOwner(dialect));
  });
  afterAll(async () => store?.close());

  it('keeps an instance: spec, desired and observed state, handle, ports', async () => {
    const id = randomUUID();
    await store.instances.insert({ id, ownerId: owner, name: 'web', spec: spec('web'), desiredState: 'running' });
    await store.instances.updateObserved(id, {
      state: 'running',
      generation: 3,
      handle: { driver: 'process', pid: 42, instanceId: id },
      ports: [{ name: 'web', hostPort: 40001 }],
      startedAt: 1_700_000_000_123,
      exitCode: null,
    });
    const r = await store.instances.byOwnerNameAndName('owner', 'web');
    expect(r).toMatchObject({
      id,
      ownerName: 'owner',
      state: 'running',
      desiredState: 'running',
      generation: 3,
      handle: { driver: 'process', pid: 42, instanceId: id },
      ports: [{ name: 'web', hostPort: 40001 }],
      startedAt: 1_700_000_000_123,
      exitCode: null,
    });
    expect(r!.spec).toEqual(spec('web'));
    await store.instances.setDesired(id, 'stopped');
    await store.instances.updateSpec(id, spec('web2'), 'web2');
    expect(await store.instances.byOwnerAndName(owner, 'web2')).toMatchObject({ desiredState: 'stopped', name: 'web2' });
    const dup = await store.instances
      .insert({ id: randomUUID(), ownerId: owner, name: 'web2', spec: spec('web2'), desiredState: 'running' })
      .catch((e: unknown) => e);
    expect(isUniqueViolation(dup)).toBe(true);
    expect((await store.instances.list(owner)).map((i) => i.name)).toEqual(['web2']);
    await store.instances.delete(id);
    expect(await store.instances.byId(id)).toBeUndefined();
  });

  it('upserts proxy settings and the default instance', async () => {
    const id = randomUUID();
    const base = { instanceId: id, ownerName: 'owner', instanceName: 'app', sharedWith: [], sharedWithGroups: [], idleTimeoutSeconds: 0, startOnDemand: false };
    await store.proxy.upsert(base);
    await store.proxy.upsert({ ...base, sharedWith: ['u1'], idleTimeoutSeconds: 60, startOnDemand: true });
    await store.proxy.recordActivity(new Map([[id, 1_700_000_000_999]]));
    expect(await store.proxy.settings(id)).toEqual({ ...base, sharedWith: ['u1'], idleTimeoutSeconds: 60, startOnDemand: true, lastActivityAt: 1_700_000_000_999 });
    expect((await store.proxy.cullable()).map((s) => s.instanceId)).toContain(id);
    await store.proxy.setDefault(owner, id);
    await store.proxy.setDefault(owner, id);
    expect((await store.proxy.defaultFor(owner))?.instanceId).toBe(id);
    await store.proxy.setDefault(owner, null);
    expect(await store.proxy.defaultFor(owner)).toBeUndefined();
  });

  it('keeps jobs with byte outputs and fractional times; expires and interrupts them', async () => {
    const row = (id: string, createdAt: number) => queuedJobRow({ id, user_id: owner, runtime: 'sh', spec: '{}', created_at: createdAt });
    const [a, b] = [randomUUID(), randomUUID()];
    await store.jobs.insert(row(a, 1000));
    await store.jobs.insert(row(b, 2000));
    const bytes = Buffer.from([0, 1, 2, 255, 0x0a]);
    await store.jobs.finish(a, {
      status: 'ok',
      exit_code: 0,
      signal: null,
      stdout: bytes,
      stderr: Buffer.alloc(0),
      stdout_truncated: 1,
      stderr_truncated: 0,
      wall_ms: 12.3456789,
      cpu_ms: 0.001,
      memory_peak_bytes: 5 * 2 ** 30,
      output_name: 'out.bin',
      output_mime: 'application/octet-stream',
      output_data: bytes,
      note: null,
      steps: null,
      started_at: 1001,
      finished_at: 1013,
      expires_at: 5000,
    });
    const done = await store.jobs.byId(a);
    expect(done).toMatchObject({ state: 'done', user_name: 'owner', wall_ms: 12.3456789, cpu_ms: 0.001, memory_peak_bytes: 5 * 2 ** 30 });
    expect(Buffer.compare(done!.stdout!, bytes)).toBe(0);
    expect(Buffer.compare(done!.output_data!, bytes)).toBe(0);
    expect((await store.jobs.list(owner, 10)).map((j) => j.id)).toEqual([b, a]);
    expect(await store.jobs.markInterrupted(3000, 6000)).toBe(1);
    expect((await store.jobs.byId(b))?.status).toBe('killed');
    expect(await store.jobs.deleteExpired(5500)).toBe(1);
    expect(await store.jobs.byId(a)).toBeUndefined();
  });
});
