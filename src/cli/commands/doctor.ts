/** `corral doctor`: what this machine offers corral, and what corral does without the rest. */
import type { Command } from 'commander';
import type { CheckStatus } from '../../core/doctor.js';
import { jsonOption } from '../command.js';
import { print, runAction } from '../output.js';

const MARK: Record<CheckStatus, string> = { ok: 'ok     ', limited: 'limited', missing: 'missing' };

export function registerDoctorCommand(program: Command): void {
  jsonOption(program.command('doctor'))
    .description('check this machine: Node.js, data dir, bubblewrap, cgroups, Docker, chromium, the disk limit')
    .option('-c, --config <file>', 'config file (to find the data directory)')
    .option('-d, --data <dir>', 'data directory to check (default: from the config, ./corral-data)')
    .action(
      runAction.wrap(async (flags: { config?: string; data?: string; json?: boolean }) => {
        const [{ loadConfig }, { runDoctor }] = await Promise.all([import('../../core/config.js'), import('../../core/doctor.js')]);
        const { data, drivers, instances } = loadConfig({ file: flags.config, flags: { data: flags.data } });
        const report = await runDoctor({
          data,
          process: drivers.process,
          diskCheckSeconds: instances.diskCheckSeconds,
          swarm: drivers.enabled.includes('swarm') ? drivers.swarm : undefined,
        });
        print(!!flags.json, report, () =>
          report.checks
            .map((c) => `${MARK[c.status]}  ${c.name.padEnd(10)}  ${c.detail}${c.without ? `\n${' '.repeat(21)}without it: ${c.without}` : ''}`)
            .join('\n'),
        );
        if (!report.ready) process.exitCode = 1;
      }),
    );
}
