/**
 * pixelated-dispatcher's agents as corral users and their default instance: an agent is a
 * user; its agent process is the user's default instance (made from `compat.pixelatedAgent`
 * at its first start when the user has none). Both the manager API and the login proxy act
 * through here, over the accounts and instances services.
 */
import { request } from 'undici';
import type { User } from '../../core/accounts/index.js';
import type { Corral } from '../../core/corral.js';
import { errors, isCorralError } from '../../core/errors.js';
import type { Instance, InstanceSpecInput } from '../../core/instances/index.js';
import { ACTIVE_STATES } from '../../core/instances/states.js';

export type AgentState = 'running' | 'stopped';

export interface Agent {
  user: User;
  instance: Instance | undefined;
  state: AgentState;
}

/** How often login looks whether the agent answers yet. */
const READY_POLL_MS = 200;

export class PixelatedAgents {
  constructor(private readonly corral: Corral) {}

  private get service() {
    return this.corral.instances.service;
  }

  private get agentConfig() {
    return this.corral.config.compat.pixelatedAgent;
  }

  async list(): Promise<Agent[]> {
    const users = await this.corral.store.users.list();
    return Promise.all(users.map((u) => this.agentOf(u)));
  }

  async get(name: string): Promise<Agent> {
    return this.agentOf(await this.corral.accounts.users.get(name));
  }

  async create(name: string, password: string): Promise<Agent> {
    return this.agentOf(await this.corral.accounts.users.create({ name, password, role: 'user' }));
  }

  /** Removes the user's instances (their workloads end), then the user. */
  async remove(name: string): Promise<void> {
    const user = await this.corral.accounts.users.get(name);
    for (const i of await this.service.list(user)) await this.service.remove(user, i.id);
    await this.corral.accounts.users.delete(name);
  }

  /** Starts or stops the agent; 409 when it already is in that state. */
  async setState(name: string, state: AgentState): Promise<Agent> {
    const agent = await this.get(name);
    if (agent.state === state) throw errors.invalidState(`agent "${name}" is already ${state}`);
    if (state === 'running') await this.start(agent.user);
    else await this.service.stop(agent.user, agent.instance!.id);
    return this.get(name);
  }

  /** Checks the agent's password (an unknown agent is 404: the caller is an admin). */
  async authenticate(name: string, password: string, address: string): Promise<User> {
    await this.corral.accounts.users.get(name);
    return this.corral.accounts.users.verifyLogin(name, password, address);
  }

  /** Empties the agent's data dir; 409 while it runs. */
  async resetData(name: string): Promise<void> {
    const agent = await this.get(name);
    if (agent.instance) await this.service.resetData(agent.user, agent.instance.id);
  }

  /** The agent's port on 127.0.0.1 while it runs. */
  port(agent: Agent): number | undefined {
    return agent.state === 'running' ? agent.instance?.ports[0]?.hostPort : undefined;
  }

  async memoryUsage(agent: Agent): Promise<number> {
    return agent.state === 'running' ? ((await this.service.memoryBytes(agent.instance!.id)) ?? 0) : 0;
  }

  /** Starts the user's agent (making its instance first if it has none) and returns it. */
  async start(user: User): Promise<Instance> {
    const current = await this.instanceOf(user);
    if (!current) {
      const made = await this.createInstance(user);
      return made.desiredState === 'running' ? made : this.service.start(user, made.id);
    }
    if (current.state === 'running' || current.desiredState === 'running') return current;
    return this.service.start(user, current.id);
  }

  /**
   * Starts the agent and waits until it answers HTTP on its port (any status will do), for
   * at most `readyTimeoutSeconds`. `stdinLine` is written to the agent's stdin once it runs.
   */
  async startAndWait(user: User, stdinLine?: string): Promise<Instance> {
    const until = Date.now() + this.agentConfig.readyTimeoutSeconds * 1000;
    let instance = await this.start(user);
    let handed = stdinLine === undefined;
    for (;;) {
      if (!handed && instance.state === 'running') handed = this.service.writeStdin(instance.id, stdinLine!);
      const port = instance.state === 'running' ? instance.ports[0]?.hostPort : undefined;
      if (port && (await answers(port))) return instance;
      if (instance.state === 'failed' || instance.desiredState !== 'running') {
        throw errors.upstreamUnavailable(`the agent of "${user.name}" did not start: ${instance.lastError ?? instance.state}`);
      }
      if (Date.now() > until) throw errors.upstreamUnavailable(`the agent of "${user.name}" did not answer in time`);
      await new Promise((r) => setTimeout(r, READY_POLL_MS));
      instance = await this.service.get(user, instance.id);
    }
  }

  async stop(user: User): Promise<void> {
    const instance = await this.instanceOf(user);
    if (instance && instance.desiredState === 'running') await this.service.stop(user, instance.id);
  }

  private async agentOf(user: User): Promise<Agent> {
    const instance = await this.instanceOf(user);
    // Running as the old manager meant it: started and not stopped (it may still be booting).
    // `stale` (no manager holds its lease now) is still an agent that was started.
    const running = instance?.desiredState === 'running' && (instance.state === 'stale' || ACTIVE_STATES.has(instance.state));
    return { user, instance, state: running ? 'running' : 'stopped' };
  }

  /** The user's default instance, if any. */
  private async instanceOf(user: User): Promise<Instance | undefined> {
    const d = await this.corral.store.proxy.defaultFor(user.id);
    if (!d) return undefined;
    return this.service.get(user, d.instanceId).catch((e: unknown) => {
      if (isCorralError(e) && e.code === 'instance_not_found') return undefined;
      throw e;
    });
  }

  private async createInstance(user: User): Promise<Instance> {
    const cfg = this.agentConfig;
    const what: Partial<InstanceSpecInput> = cfg.sourceUrl
      ? { source: { url: cfg.sourceUrl }, ...(cfg.process && { process: cfg.process }) }
      : cfg.command
        ? { command: cfg.command }
        : cfg.shell
          ? { shell: cfg.shell }
          : {};
    if (!Object.keys(what).length) {
      throw errors.config('config key "compat.pixelatedAgent": set shell, command or sourceUrl: what each agent runs');
    }
    // Two first logins at once, or an instance of that name the user made: adopt it.
    const instance = await this.service
      .create(user, { name: cfg.instance, ...what, env: cfg.env, ports: [{ name: 'http' }] })
      .catch((e: unknown) => {
        if (isCorralError(e) && e.code === 'instance_exists') return this.service.get(user, cfg.instance);
        throw e;
      });
    const { store } = this.corral;
    await store.proxy.upsert({
      instanceId: instance.id,
      ownerName: user.name,
      instanceName: instance.name,
      sharedWith: [],
      idleTimeoutSeconds: 0,
      startOnDemand: false,
    });
    await store.proxy.setDefault(user.id, instance.id);
    return instance;
  }
}

/** Whether something answers HTTP on 127.0.0.1:port. */
async function answers(port: number): Promise<boolean> {
  try {
    const res = await request(`http://127.0.0.1:${port}/`, { method: 'HEAD', headersTimeout: 2000, bodyTimeout: 2000 });
    await res.body.dump();
    return true;
  } catch {
    return false;
  }
}
