/** Fakes shared by the coordinator's unit tests: an in-memory store and a scripted executor. */
import { createHash } from "node:crypto";
import {
  type CoordinatorStore,
  type ListedObject,
  runJob,
  type RunJobOptions,
  type RunResult,
} from "../../lib/coordinator/run.ts";
import { planJob } from "../../lib/plan/mod.ts";
import type { Executor, StageOutcome, WorkerLaunch } from "../../lib/executors/types.ts";
import type { JobSpec, Stage } from "../../lib/jobspec/mod.ts";
import type { RelayConfig } from "../../lib/relay/config.ts";

export const SECRET = "sup3r-s3cret-key-value";
export const cfg: RelayConfig = {
  accesskey: "AKIAFAKE",
  secretkey: SECRET,
  host: "127.0.0.1",
  port: 9999,
  region: "us-east-1",
  external_server: true,
  secure: false,
};

/** A store backed by a Map; the fake executor "uploads" into it. */
export class MemStore implements CoordinatorStore {
  objects = new Map<string, { body: string; mtime: number }>();
  tick = 0;
  put(key: string, body: string) {
    this.objects.set(key, { body, mtime: ++this.tick });
  }
  getJSON(_b: string, k: string) {
    const o = this.objects.get(k);
    return Promise.resolve(o ? JSON.parse(o.body) : undefined);
  }
  stat(_b: string, k: string) {
    const o = this.objects.get(k);
    return Promise.resolve(o ? { size: o.body.length } : undefined);
  }
  sha256(_b: string, k: string) {
    const o = this.objects.get(k);
    return Promise.resolve(
      o
        ? { sha256: createHash("sha256").update(o.body).digest("hex"), size: o.body.length }
        : undefined,
    );
  }
  list(_b: string, p: string): Promise<ListedObject[]> {
    return Promise.resolve(
      [...this.objects].filter(([k]) => k.startsWith(p)).map(([key, o]) => ({
        key,
        size: o.body.length,
        lastModified: o.mtime,
      })),
    );
  }
}

/** Fake executor: per stage a behaviour; records launches. */
export class FakeExecutor implements Executor {
  readonly name = "fake";
  launches: WorkerLaunch[] = [];
  constructor(
    readonly behave: (l: WorkerLaunch) => Promise<StageOutcome>,
  ) {}
  prepare(relay: { host: string; port: number }) {
    return Promise.resolve({ ...relay, host: "worker-side" });
  }
  arch() {
    return Promise.resolve("amd64");
  }
  runStage(l: WorkerLaunch) {
    this.launches.push(l);
    return this.behave(l);
  }
  [Symbol.asyncDispose]() {
    return Promise.resolve();
  }
}

export function spec(stages: Partial<Stage>[]): JobSpec {
  return {
    job: {},
    recipe: {},
    minio: { bucket: "builder" },
    stages: stages.map((s, i) => ({ id: `s${i}`, ...s })),
  } as JobSpec;
}

/**
 * Runs `sp` with a fake executor against an in-memory store (`store`, or a new one) through
 * the external-endpoint path; returns the result and the console lines.
 */
export async function runFake(
  workDir: string,
  sp: JobSpec,
  executor: Executor,
  extra: Partial<RunJobOptions> & { store?: MemStore } = {},
): Promise<{ r: RunResult; lines: string[] }> {
  const { store = new MemStore(), ...rest } = extra;
  const lines: string[] = [];
  const r = await runJob({
    spec: sp,
    plan: planJob(sp, { assumeExisting: true }),
    workDir,
    executor,
    relay: cfg,
    openStore: () => store,
    log: (l) => lines.push(l),
    signal: new AbortController().signal,
    pollIntervalMs: 5,
    ...rest,
  });
  return { r, lines };
}
