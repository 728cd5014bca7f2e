/** Run reports to render in the HTML report tests. */
import type { RunReport, StageReport } from "../../lib/coordinator/mod.ts";

const T0 = Date.parse("2026-12-03T08:00:00Z");

function stage(
  id: string,
  index: number,
  order: number,
  result: StageReport["result"],
  startS: number,
  waitS: number,
  runS: number,
  extra: Partial<StageReport> = {},
): StageReport {
  return {
    id,
    index,
    order,
    result,
    exitCode: result === "succeeded" || result === "skipped" ? 0 : result === "failed" ? 9 : null,
    durationMs: (waitS + runS) * 1000,
    waitMs: waitS * 1000,
    bytesIn: 10 * 1024 * 1024 * index,
    bytesOut: 3 * 1024 * 1024 * (index + 1),
    artifacts: [],
    objects: [],
    logFile: `/work/run/logs/${id}.log`,
    ...(result === "not-run" || result === "skipped"
      ? {}
      : { startedAt: new Date(T0 + startS * 1000).toISOString() }),
    ...extra,
  };
}

const obj = (key: string, size: number) => ({
  key,
  size,
  sha256: [...key].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7).toString(16).padStart(
    8,
    "0",
  ).repeat(8),
});

/**
 * A resumed run in which `base` was skipped, `metal` succeeded, `metal4k` failed (exit 9),
 * `kola` was cancelled by that failure and `finalize` never ran.
 */
export function resumedFailedRun(): RunReport {
  const id = "20261203.dev.0/x86_64";
  const stages = [
    stage("base", 0, 1, "skipped", 0, 0, 0, {
      reason: "succeeded in run gp-20261203074512-1a2b3c, 3 output(s) verified by sha256",
      artifacts: ["ostree", "qemu"],
      objects: [`${id}/meta.json`, `${id}/fcos-ostree.ociarchive`, `${id}/fcos-qemu.qcow2`],
      returned: [
        obj(`${id}/meta.json`, 2210),
        obj(`${id}/fcos-ostree.ociarchive`, 812 * 1024 * 1024),
        obj(`${id}/fcos-qemu.qcow2`, 1536 * 1024 * 1024),
      ],
      bytesIn: 0,
      bytesOut: 0,
    }),
    stage("metal", 1, 2, "succeeded", 1, 4, 640, {
      artifacts: ["metal"],
      objects: [`${id}/fcos-metal.raw`],
      returned: [obj(`${id}/fcos-metal.raw`, 3 * 1024 * 1024 * 1024)],
    }),
    stage("metal4k", 2, 2, "failed", 1, 4, 410, {
      reason: 'stage "metal4k": main command 1 (cosa buildextend-metal4k) exited with code 9',
    }),
    stage("kola", 3, 2, "cancelled", 1, 30, 380),
    stage("finalize", 4, 3, "not-run", 0, 0, 0),
  ];
  return {
    runId: "gp-20261203080000-4d5e6f",
    backend: "podman",
    result: "failed",
    exitCode: 9,
    error: {
      type: "StageFailedError",
      message: 'stage "metal4k" failed: exit code 9',
      stageId: "metal4k",
      workerExitCode: 9,
    },
    workDir: "/work/run",
    buildsLocation: "/work/run/builds",
    arch: "x86_64",
    relay: { external: false, host: "127.0.0.1", port: 40123, bucket: "builder", keyPrefix: "" },
    latestBuild: "20261203.dev.0",
    startedAt: new Date(T0).toISOString(),
    finishedAt: new Date(T0 + 660_000).toISOString(),
    durationMs: 660_000,
    stages,
  };
}

/** A run of `n` stages in `n / 4` groups, each returning `objects` objects. */
export function bigRun(n: number, objects: number): RunReport {
  const stages: StageReport[] = [];
  for (let i = 0; i < n; i++) {
    const order = Math.floor(i / 4) + 1;
    stages.push(
      stage(`stage-${i}`, i, order, "succeeded", (order - 1) * 100, 2, 90, {
        artifacts: [`artifact-${i}`],
        objects: Array.from({ length: objects }, (_, j) => `b/x86_64/stage-${i}-object-${j}.raw`),
        returned: Array.from(
          { length: objects },
          (_, j) => obj(`b/x86_64/stage-${i}-object-${j}.raw`, 1024 * (j + 1)),
        ),
      }),
    );
  }
  const r = resumedFailedRun();
  return {
    ...r,
    result: "succeeded",
    exitCode: 0,
    error: undefined,
    stages,
    durationMs: Math.ceil(n / 4) * 100_000,
  };
}
