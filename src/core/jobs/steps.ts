/**
 * A job's steps beyond its run: the compile step of a compiled runtime, and the cases of a
 * batch (the judges' test cases, Judge0's batch submissions). One schema per payload, the
 * checks of a batch request (each a 400 naming the field), the output comparison, and the
 * JSON kept in the `steps` column.
 */
import { Type, type Static } from '@sinclair/typebox';
import { errors } from '../errors.js';
import { JOB_STATUSES, type StepResult } from './runner.js';

export const CaseSchema = Type.Object(
  {
    stdin: Type.Optional(Type.String({ description: 'utf-8 text on the case’s stdin' })),
    expected: Type.Optional(Type.String({ description: 'the stdout the case must print to pass (see compare)' })),
  },
  { additionalProperties: false },
);
export type CaseInput = Static<typeof CaseSchema>;

export const COMPARE_MODES = ['exact', 'ignore-trailing-whitespace'] as const;
export type CompareMode = (typeof COMPARE_MODES)[number];

const stepFields = {
  status: Type.Union(JOB_STATUSES.map((s) => Type.Literal(s))),
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  signal: Type.Union([Type.String(), Type.Null()]),
  stdout: Type.String(),
  stderr: Type.String(),
  stdoutTruncated: Type.Boolean(),
  stderrTruncated: Type.Boolean(),
  wallMs: Type.Number(),
  cpuMs: Type.Union([Type.Number(), Type.Null()]),
  memoryPeakBytes: Type.Union([Type.Integer(), Type.Null()]),
};

/** What one step did, as clients see it. */
export const StepViewSchema = Type.Object(stepFields);
export type StepView = Static<typeof StepViewSchema>;

/** One case of a batch: its step, and whether it printed what was expected (null: nothing was). */
export const CaseViewSchema = Type.Object({ ...stepFields, passed: Type.Union([Type.Boolean(), Type.Null()]) });
export type CaseView = Static<typeof CaseViewSchema>;

/** The `steps` column. */
export interface StoredSteps {
  compile?: StepView;
  cases?: CaseView[];
}

export interface BatchCaps {
  maxCases: number;
  maxCaseBytes: number;
}

/** Checks a batch against the server's caps; each refusal is a 400 naming the field. */
export function checkCases(cases: CaseInput[], caps: BatchCaps): void {
  if (cases.length > caps.maxCases) {
    throw errors.validation(`cases: at most ${caps.maxCases} cases on this server (got ${cases.length})`, { details: { field: 'cases' } });
  }
  let total = 0;
  for (const [i, c] of cases.entries()) {
    total += Buffer.byteLength(c.stdin ?? '') + Buffer.byteLength(c.expected ?? '');
    if (total > caps.maxCaseBytes) {
      throw errors.validation(`cases: the cases' stdin and expected output add up to more than ${caps.maxCaseBytes} bytes (at case ${i})`, {
        details: { field: `cases.${i}` },
      });
    }
  }
}

const trimLines = (s: string) => s.replace(/[ \t\r\f\v]+$/gm, '').replace(/\n+$/, '');

/** Whether `actual` matches `expected`: byte for byte, or ignoring whitespace at line ends and trailing newlines. */
export function outputMatches(actual: string, expected: string, mode: CompareMode): boolean {
  return mode === 'exact' ? actual === expected : trimLines(actual) === trimLines(expected);
}

export function stepView(r: StepResult): StepView {
  return {
    status: r.status,
    exitCode: r.exitCode,
    signal: r.signal,
    stdout: r.stdout.toString('utf8'),
    stderr: r.stderr.toString('utf8'),
    stdoutTruncated: r.stdoutTruncated,
    stderrTruncated: r.stderrTruncated,
    wallMs: r.wallMs,
    cpuMs: r.cpuMs,
    memoryPeakBytes: r.memoryPeakBytes,
  };
}

/** A case's view: passed when it ended ok and printed the expected output (when one was given). */
export function caseView(r: StepResult, expected: string | undefined, mode: CompareMode): CaseView {
  const view = stepView(r);
  const passed = expected === undefined ? null : r.status === 'ok' && !r.stdoutTruncated && outputMatches(view.stdout, expected, mode);
  return { ...view, passed };
}
