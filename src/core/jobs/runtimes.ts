/**
 * Runtimes: the named environments jobs run in. The built-in ones (sh, python, node, ruby,
 * latex, and the compiled c, cpp and java) are offered only when found on this machine; the
 * admin adds or overrides others in config. Detection runs once, at start, with the same PATH
 * jobs get in their sandbox.
 */
import { execFile } from 'node:child_process';
import { Type, type Static } from '@sinclair/typebox';
import { errors } from '../errors.js';
import type { RuntimeConfig } from './config.js';

/** The PATH inside a job's sandbox (and the one detection uses, so they agree). */
export const SANDBOX_PATH = '/usr/local/bin:/usr/bin:/bin';

export const RuntimeSchema = Type.Object({
  name: Type.String(),
  version: Type.Union([Type.String(), Type.Null()]),
  /** Shell command run when a job names no entry. */
  command: Type.String(),
  /** Run once before `command` (a compiler); its failure is a `compile-error`. */
  compileCommand: Type.Union([Type.String(), Type.Null()]),
  /** The file the default command runs, e.g. main.py. */
  entryFile: Type.Union([Type.String(), Type.Null()]),
  network: Type.Boolean({ description: 'whether jobs of this runtime may ask for the network' }),
  image: Type.Union([Type.String(), Type.Null()]),
  readOnlyPaths: Type.Array(Type.String()),
  driver: Type.String({ description: 'the driver its jobs run on' }),
});
export type Runtime = Static<typeof RuntimeSchema>;

/** Where runtimes of drivers other than process are detected: the version command in their image. */
export interface RuntimeDetection {
  /** Driver of runtimes that name none (drivers.default). */
  defaultDriver?: string;
  /** Runs `command` where jobs of `driver` run; undefined when it fails or cannot run there. */
  probe?: (driver: string, image: string | undefined, command: string) => Promise<string | undefined>;
}

const BUILT_IN: RuntimeConfig[] = [
  { name: 'sh', command: 'sh main.sh', entryFile: 'main.sh', versionCommand: 'basename "$(readlink -f "$(command -v sh)")"', readOnlyPaths: [], network: false },
  { name: 'python', command: 'python3 main.py', entryFile: 'main.py', versionCommand: 'python3 --version', readOnlyPaths: [], network: false },
  { name: 'node', command: 'node main.js', entryFile: 'main.js', versionCommand: 'node --version', readOnlyPaths: [], network: false },
  { name: 'ruby', command: 'ruby main.rb', entryFile: 'main.rb', versionCommand: 'ruby --version', readOnlyPaths: [], network: false },
  // Compiled languages: the compile step builds every source file given; a failure is a
  // compile-error with the compiler's message. -O2 as judges do; the math library linked.
  {
    name: 'c',
    compileCommand: 'gcc -std=gnu17 -O2 -pipe -o main *.c -lm',
    command: './main',
    entryFile: 'main.c',
    versionCommand: 'gcc --version',
    readOnlyPaths: [],
    network: false,
  },
  {
    name: 'cpp',
    compileCommand: 'g++ -std=gnu++17 -O2 -pipe -o main $(ls *.cpp *.cc *.cxx 2>/dev/null) -lm',
    command: './main',
    entryFile: 'main.cpp',
    versionCommand: 'g++ --version',
    readOnlyPaths: [],
    network: false,
  },
  {
    name: 'java',
    // One JVM thread per core for the compiler and the collector: threads count against pids.
    compileCommand: 'javac -J-XX:+UseSerialGC -J-XX:TieredStopAtLevel=1 -encoding UTF-8 -d . *.java',
    command: 'java -XX:+UseSerialGC -cp . Main',
    entryFile: 'Main.java',
    versionCommand: 'javac -version',
    readOnlyPaths: [],
    network: false,
  },
  {
    name: 'latex',
    command: 'pdflatex -interaction=nonstopmode -halt-on-error main.tex',
    entryFile: 'main.tex',
    versionCommand: 'pdflatex --version',
    readOnlyPaths: [],
    network: false,
  },
];

/** First line the version command prints, or undefined when it fails (not installed). */
function detectVersion(command: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      '/bin/sh',
      ['-c', command],
      { env: { PATH: SANDBOX_PATH, LANG: 'C.UTF-8' }, timeout: 10_000, maxBuffer: 64 * 1024 },
      (err, stdout, stderr) => {
        if (err) return resolve(undefined);
        resolve((stdout.trim() || stderr.trim()).split('\n')[0]!.trim().slice(0, 200));
      },
    );
  });
}

export class Runtimes {
  private constructor(private readonly byName: Map<string, Runtime>) {}

  /**
   * Detects the built-in runtimes and those in config (config wins on a name clash; fields it
   * leaves out come from the built-in runtime of that name).
   */
  static async detect(configured: RuntimeConfig[], where: RuntimeDetection = {}): Promise<Runtimes> {
    const names = new Set(configured.map((r) => r.name));
    const candidates = [
      ...BUILT_IN.filter((r) => !names.has(r.name)),
      ...configured.map((c) => ({ ...BUILT_IN.find((b) => b.name === c.name), ...c })),
    ];
    const found = await Promise.all(
      candidates.map(async (r): Promise<Runtime | undefined> => {
        if (!r.command) throw errors.config(`config key "jobs.runtimes": runtime "${r.name}" needs a command`);
        const driver = r.driver ?? where.defaultDriver ?? 'process';
        let version: string | null | undefined = null;
        if (driver !== 'process') version = where.probe ? await where.probe(driver, r.image, r.versionCommand ?? 'true') : undefined;
        else if (r.versionCommand) version = await detectVersion(r.versionCommand);
        if (version === undefined) return undefined;
        return {
          name: r.name,
          driver,
          version: version || null,
          command: r.command,
          compileCommand: r.compileCommand ?? null,
          entryFile: r.entryFile ?? null,
          network: r.network,
          image: r.image ?? null,
          readOnlyPaths: r.readOnlyPaths,
        };
      }),
    );
    const list = found.filter((r): r is Runtime => !!r).sort((a, b) => a.name.localeCompare(b.name));
    return new Runtimes(new Map(list.map((r) => [r.name, r])));
  }

  list(): Runtime[] {
    return [...this.byName.values()];
  }

  /** The runtime named `name`, or a 400 listing the known ones. */
  get(name: string): Runtime {
    const r = this.byName.get(name);
    if (!r) throw errors.unknownRuntime(name, [...this.byName.keys()]);
    return r;
  }
}
