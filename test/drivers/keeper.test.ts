/**
 * Process-driver workloads outlive their manager through a per-host keeper (design:
 * docs/instances.md, "Outliving the manager"). Not built yet: these are the tests the keeper
 * must pass, each against a server spawned as a child process (test/helpers/server.ts
 * spawnServer) on a real data dir, with instances serving on real ports.
 */
import { describe, it } from 'vitest';

describe('the keeper: instances outlive their manager', () => {
  it.todo(
    'SIGKILL of the manager’s whole process group except the keeper: the instance keeps answering on its port while no manager runs, polled throughout',
  );
  it.todo('the manager started again on the same data dir re-adopts it: same generation, one copy of its processes in /proc, its pasta still the one');
  it.todo('lines the workload wrote while no manager ran are in its logs after re-adoption, in order, with the ones before');
  it.todo('after re-adoption: attach gets live output and delivers stdin; stop ends it with its stop signal and grace; signal reaches it');
  it.todo('a workload that ended while no manager ran is recorded with its real exit code and signal (run/exit.json), then the restart policy applies');
  it.todo('a pid reused by another process is never adopted (start time checked)');
  it.todo('SIGTERM of the server detaches instances (they keep running, desired state running) and the next server re-adopts them; jobs still end with the server');
  it.todo('SIGTERM of the keeper stops every workload with its stop signal and grace; the next server starts them again (generation + 1)');
  it.todo('two managers on PostgreSQL on one host: SIGKILL of the holder, the survivor adopts through the keeper socket in the handle instead of restarting (generation unchanged, no duplicate), stale only in between');
});
