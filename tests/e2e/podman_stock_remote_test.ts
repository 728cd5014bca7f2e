/**
 * End to end, `--worker-source stock` on a "remote" podman host (an sshd on loopback in front
 * of a test podman service): the stage runs on an image with neither deno nor the worker
 * (the stock-cosa stand-in); deno comes from a Deno image on that host (its own architecture)
 * and the run's worker bundle is uploaded into a cache volume named by its sha256. The
 * coordinator runs as the bundled `podman_run.js` with its own `work.js` next to it, given a
 * unique comment so the test's bundle (and its cache volume) is its own; the Deno image is a
 * per-test derivative of the Deno stand-in, so its deno cache volume is the test's own too.
 * The volumes are inspected on disk (the "remote" host is this machine): their inode numbers
 * show whether a run uploaded or copied again.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import tar from "tar-stream";
import { join } from "node:path";
import { PodmanClient, runCreatedContainer } from "../../lib/podman/mod.ts";
import {
  CACHE_MARKER,
  cacheHelperSpec,
  denoCacheVolume,
  LABEL_CACHE,
  workerCacheVolume,
} from "../../lib/podman/stock.ts";
import { bundle } from "../../scripts/bundle.ts";
import { ROOT, runCommand, sha256File, tempDir, waitFor } from "../_helpers/mod.ts";
import {
  BUSYBOX_TEST_IMAGE,
  DENO_TEST_IMAGE,
  ensureDenoImage,
  ensureTestImage,
  podmanMissing,
  startPodmanService,
  STOCK_TEST_IMAGE,
} from "../_helpers/podman.ts";
import { sshdMissing, startSshd } from "../_helpers/sshd.ts";
import { leftovers, removeRun, scriptEnv } from "./_podman_helpers.ts";

const missing = podmanMissing() ?? sshdMissing();
if (missing) console.log(`SKIP tests/e2e/podman_stock_remote_test.ts: ${missing}`);

const JOB = `
job: { strict: true }
recipe: { git_url: https://example.com/fake-config.git, git_ref: main }
stages:
  - id: probe
    execution_order: 1
    return_files: [probe.txt]
    commands:
      - "{ command -v deno; deno --version | head -n 1; id -u; } > probe.txt"
`;

async function podmanCli(args: string[]): Promise<string> {
  const r = await runCommand("podman", args, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`podman ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

async function mountpoint(volume: string): Promise<string> {
  return await podmanCli(["volume", "inspect", "--format", "{{.Mountpoint}}", volume]);
}

/** Inode numbers of the files in a volume: a new upload or copy renames in a new inode. */
async function inodes(volume: string): Promise<Record<string, number>> {
  const dir = await mountpoint(volume);
  const out: Record<string, number> = {};
  for await (const e of Deno.readDir(dir)) out[e.name] = (await Deno.stat(join(dir, e.name))).ino!;
  return out;
}

Deno.test({
  name: "podman e2e: --worker-source stock on a remote host (deno image + uploaded bundle)",
  ignore: missing !== undefined,
}, async (t) => {
  await ensureTestImage({ stock: true });
  await ensureDenoImage();
  await using tmp = await tempDir("gp-e2e-stock-");
  const testId = crypto.randomUUID().slice(0, 8);
  // The test's own Deno image (own id, so its own deno cache volume).
  const denoImage = `localhost/gangplank-deno-stocktest-${testId}:test`;
  await runCommand("podman", ["build", "--pull=never", "-t", denoImage, "-f", "-"], {
    stdin: `FROM ${DENO_TEST_IMAGE}\nLABEL gangplank.test=${testId}\n`,
    timeoutMs: 120_000,
  });
  const denoId = await podmanCli(["image", "inspect", "--format", "{{.Id}}", denoImage]);
  // The bundled coordinator with its own work.js next to it (a unique one).
  const inst = join(tmp.path, "inst");
  await Deno.mkdir(inst);
  const [workJs, runJs] = await bundle({ root: ROOT, entries: ["work", "podman_run"] });
  await Deno.copyFile(runJs, join(inst, "podman_run.js"));
  await Deno.writeTextFile(
    join(inst, "work.js"),
    (await Deno.readTextFile(workJs)) + `\n// podman stock test ${testId} a\n`,
  );
  await Deno.writeTextFile(join(tmp.path, "job.yaml"), JOB);
  await using svc = await startPodmanService();
  await using sshd = await startSshd();
  const podman = PodmanClient.unix(svc.socketPath);
  const denoVolume = denoCacheVolume(denoId);
  const created = new Set<string>([denoVolume]);
  const runIds: string[] = [];
  let n = 0;

  /** podman_run.js on the job, the stock image, the test's Deno image; `extra` wins. */
  const argv = (w: string, extra: string[]) => [
    "run",
    "-A",
    "--no-config",
    join(inst, "podman_run.js"),
    "-s",
    join(tmp.path, "job.yaml"),
    "-i",
    STOCK_TEST_IMAGE,
    "-w",
    w,
    "--known-hosts",
    sshd.knownHostsPath,
    "--deno-image",
    denoImage,
    ...extra,
  ];
  const remoteEnv = () =>
    scriptEnv({
      CONTAINER_HOST: `ssh://root@127.0.0.1:${sshd.port}${svc.socketPath}`,
      CONTAINER_SSHKEY: sshd.userKeyPath,
    });
  const run = async (...extra: string[]) => {
    const w = join(tmp.path, `w${++n}`);
    const r = await runCommand(Deno.execPath(), argv(w, extra), {
      cwd: tmp.path,
      timeoutMs: 240_000,
      env: remoteEnv(),
    });
    const runId = (r.stdout + r.stderr).match(/run (gp-[0-9a-zA-Z-]+)/)?.[1];
    if (runId) runIds.push(runId);
    return { ...r, out: r.stdout + r.stderr, w, runId };
  };
  const bundleSha = async () => await sha256File(join(inst, "work.js"));
  const assertComplete = async (volume: string, marker: string, file: string, sha: string) => {
    const dir = await mountpoint(volume);
    assert.equal(await Deno.readTextFile(join(dir, CACHE_MARKER)), marker, `${volume} marker`);
    assert.equal(await sha256File(join(dir, file)), sha, `${volume}/${file}`);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, [CACHE_MARKER, file].sort(), `${volume}: no temp files left`);
  };
  const denoSha = await sha256File(await Deno.realPath(Deno.execPath()));

  try {
    await t.step(
      "a stage on an image without deno or worker runs; its artifact comes back",
      async () => {
        // The stand-in for the stock image really lacks both.
        const lacks = await runCommand("podman", [
          "run",
          "--rm",
          "--network",
          "host",
          "--entrypoint",
          "/bin/sh",
          STOCK_TEST_IMAGE,
          "-c",
          "command -v deno || ls /usr/local/bin/deno /usr/lib/gangplank/work.js",
        ], { timeoutMs: 60_000 });
        assert.notEqual(lacks.code, 0, lacks.stdout);
        const sha = await bundleSha();
        created.add(workerCacheVolume(sha));
        const r = await run();
        assert.equal(r.code, 0, r.out);
        const probe = await Deno.readTextFile(join(r.w, "builds", "cache", "probe.txt"));
        const [where, version, uid] = probe.trim().split("\n");
        assert.equal(where, "/gangplank/deno/deno", probe);
        assert.match(version, /^deno \d+\.\d+\.\d+/, probe);
        assert.equal(uid, "1000", "the image's own user (builder) runs the stage");
        await assertComplete(workerCacheVolume(sha), sha, "work.js", sha);
        await assertComplete(denoVolume, denoId, "deno", denoSha);
        const labels = JSON.parse(
          await podmanCli(["volume", "inspect", "--format", "{{json .Labels}}", denoVolume]),
        );
        assert.equal(labels[LABEL_CACHE], "deno");
        assert.ok(r.runId, r.out);
        assert.deepEqual(await leftovers(podman, r.runId), {
          containers: [],
          volumes: [],
          secrets: [],
        });
      },
    );

    await t.step("a second run reuses both volumes; a changed bundle gets a new one", async () => {
      const sha = await bundleSha();
      const before = {
        deno: await inodes(denoVolume),
        worker: await inodes(workerCacheVolume(sha)),
      };
      const again = await run();
      assert.equal(again.code, 0, again.out);
      assert.deepEqual(await inodes(denoVolume), before.deno, "deno was not copied again");
      assert.deepEqual(
        await inodes(workerCacheVolume(sha)),
        before.worker,
        "the bundle was not uploaded again",
      );
      await Deno.writeTextFile(join(inst, "work.js"), `// changed ${testId}\n`, { append: true });
      const sha2 = await bundleSha();
      assert.notEqual(sha2, sha);
      created.add(workerCacheVolume(sha2));
      const changed = await run();
      assert.equal(changed.code, 0, changed.out);
      await assertComplete(workerCacheVolume(sha2), sha2, "work.js", sha2);
      assert.deepEqual(await inodes(workerCacheVolume(sha)), before.worker, "old one untouched");
      assert.deepEqual(await inodes(denoVolume), before.deno, "deno reused across bundles");
    });

    await t.step("a half-populated cache is not trusted: the next run fills it again", async () => {
      const sha = await bundleSha();
      // A crash after the copy and the upload began, before either was complete: the files
      // are cut short and no marker was written.
      for (const [volume, file] of [[denoVolume, "deno"], [workerCacheVolume(sha), "work.js"]]) {
        const dir = await mountpoint(volume);
        await Deno.remove(join(dir, CACHE_MARKER));
        const f = await Deno.open(join(dir, file), { write: true });
        await f.truncate(1000);
        f.close();
      }
      const r = await run();
      assert.equal(r.code, 0, r.out);
      await assertComplete(workerCacheVolume(sha), sha, "work.js", sha);
      await assertComplete(denoVolume, denoId, "deno", denoSha);
      const probe = await Deno.readTextFile(join(r.w, "builds", "cache", "probe.txt"));
      assert.match(probe, /^\/gangplank\/deno\/deno\ndeno \d/);
    });

    await t.step(
      "two runs filling the same new cache at once both pass; it ends complete",
      async () => {
        await Deno.writeTextFile(join(inst, "work.js"), `// parallel ${testId}\n`, {
          append: true,
        });
        const sha = await bundleSha();
        created.add(workerCacheVolume(sha));
        const [a, b] = await Promise.all([run(), run()]);
        assert.equal(a.code, 0, a.out);
        assert.equal(b.code, 0, b.out);
        await assertComplete(workerCacheVolume(sha), sha, "work.js", sha);
      },
    );

    await t.step("the helper refuses an upload whose sha256 is not the bundle's", async () => {
      const signal = AbortSignal.timeout(120_000);
      const volumes = { deno: `gangplank-test-${testId}-d`, worker: `gangplank-test-${testId}-w` };
      for (const v of Object.values(volumes)) {
        created.add(v);
        await podman.createVolume(v, { signal });
      }
      const good = new TextEncoder().encode(`console.log("good ${testId}");\n`);
      const goodSha = createHash("sha256").update(good).digest("hex");
      const attempt = async (upload: Uint8Array) => {
        const rid = `gp-test-${testId}-${crypto.randomUUID().slice(0, 4)}`;
        runIds.push(rid);
        const id = await podman.createContainer(
          cacheHelperSpec({
            name: `gangplank-${rid}-worker-cache`,
            runId: rid,
            denoImage,
            volumes,
            tag: rid,
            workerSha256: goodSha,
          }),
          { signal },
        );
        const pack = tar.pack();
        pack.entry({ name: `work.js.${rid}`, size: upload.length }, Buffer.from(upload));
        pack.finalize();
        const chunks: Uint8Array[] = [];
        for await (const c of pack) chunks.push(c as Uint8Array);
        await podman.putArchive(id, "/gangplank/worker", new Uint8Array(Buffer.concat(chunks)), {
          signal,
        });
        const lines: string[] = [];
        const r = await runCreatedContainer(podman, id, { signal, onLine: (l) => lines.push(l) });
        return { code: r.exitCode, lines };
      };
      const dir = await mountpoint(volumes.worker);
      const evil = await attempt(new TextEncoder().encode(`console.log("evil");\n`));
      assert.equal(evil.code, 3, evil.lines.join("\n"));
      assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing placed, the upload removed");
      const ok = await attempt(good);
      assert.equal(ok.code, 0, ok.lines.join("\n"));
      await assertComplete(volumes.worker, goodSha, "work.js", goodSha);
    });

    await t.step("a local host given --deno-image uses the same volumes", async () => {
      const sha = await bundleSha();
      const before = {
        deno: await inodes(denoVolume),
        worker: await inodes(workerCacheVolume(sha)),
      };
      const r = await run("--remote", `unix://${svc.socketPath}`);
      assert.equal(r.code, 0, r.out);
      const probe = await Deno.readTextFile(join(r.w, "builds", "cache", "probe.txt"));
      assert.match(probe, /^\/gangplank\/deno\/deno\n/, "not this machine's deno bound in");
      assert.deepEqual(await inodes(denoVolume), before.deno);
      assert.deepEqual(await inodes(workerCacheVolume(sha)), before.worker);
    });

    await t.step("interrupted while deno is copied: the helper container goes", async (t) => {
      // A "Deno image" whose deno never finishes: the run is stopped while it copies.
      await ensureTestImage({ minimal: true });
      const hang = `localhost/gangplank-deno-hang-${testId}:test`;
      const ctx = join(tmp.path, "hang");
      await Deno.mkdir(ctx);
      await Deno.writeTextFile(join(ctx, "deno"), "#!/bin/sh\necho copying\nexec sleep 300\n", {
        mode: 0o755,
      });
      const built = await runCommand("podman", [
        "build",
        "--pull=never",
        "-t",
        hang,
        "-f",
        "-",
        ctx,
      ], {
        stdin: `FROM ${BUSYBOX_TEST_IMAGE}\nCOPY deno /bin/deno\nENV PATH=/bin\n`,
        timeoutMs: 120_000,
      });
      assert.equal(built.code, 0, built.stderr);
      const hangId = await podmanCli(["image", "inspect", "--format", "{{.Id}}", hang]);
      created.add(denoCacheVolume(hangId));
      /** Starts a run on the hanging image; resolves once its helper runs, with the run id. */
      const startHanging = async (w: string) => {
        const child = new Deno.Command(Deno.execPath(), {
          args: argv(join(tmp.path, w), ["--deno-image", hang]),
          cwd: tmp.path,
          env: remoteEnv(),
          clearEnv: true,
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn();
        try {
          const runId = await waitFor(async () => {
            const ps = await podmanCli([
              "ps",
              "--filter",
              `ancestor=${hang}`,
              "--filter",
              "status=running",
              "--format",
              '{{index .Labels "gangplank.run-id"}}',
            ]);
            return ps.split("\n")[0];
          }, { timeoutMs: 120_000, what: "the helper container to run" });
          runIds.push(runId);
          return { child, runId };
        } catch (e) {
          child.kill("SIGKILL");
          await child.status;
          throw e;
        }
      };
      const nothingLeft = async (runId: string) => {
        assert.equal(await podmanCli(["ps", "-a", "--filter", `ancestor=${hang}`, "-q"]), "");
        assert.deepEqual(await leftovers(podman, runId), {
          containers: [],
          volumes: [],
          secrets: [],
        });
      };
      try {
        await t.step("Ctrl-C: the run removes it and exits 130", async () => {
          const { child, runId } = await startHanging("w-int");
          child.kill("SIGINT");
          assert.equal((await child.status).code, 130);
          await nothingLeft(runId);
        });
        await t.step("kill -9: --cleanup --run-id removes it; cache volumes stay", async () => {
          const { child, runId } = await startHanging("w-kill");
          child.kill("SIGKILL");
          await child.status;
          assert.equal((await leftovers(podman, runId)).containers.length, 1, "helper left");
          const r = await runCommand(Deno.execPath(), [
            ...argv(join(tmp.path, "w-clean"), []),
            "--cleanup",
            "--run-id",
            runId,
          ], { cwd: tmp.path, timeoutMs: 120_000, env: remoteEnv() });
          assert.equal(r.code, 0, r.stdout + r.stderr);
          await nothingLeft(runId);
          for (const v of [denoVolume, workerCacheVolume(await bundleSha())]) {
            assert.ok(await podman.volumeExists(v, { signal: AbortSignal.timeout(10_000) }), v);
          }
        });
      } finally {
        await runCommand("podman", ["rmi", "-f", hang], { timeoutMs: 60_000 }).catch(() => {});
      }
    });

    await t.step(
      "bad input: exit 2, one line naming the flag or image, nothing created",
      async () => {
        const volumesBefore = (await podman.listVolumes({
          signal: AbortSignal.timeout(20_000),
          labels: { [LABEL_CACHE]: undefined },
        })).map((v) => v.Name).sort();
        const bogus = await run("--worker-source", "bogus");
        assert.equal(bogus.code, 2, bogus.out);
        assert.match(bogus.stderr.trim(), /^[^\n]*--worker-source[^\n]*bogus[^\n]*$/);
        const noDeno = `localhost/no-such-deno-${testId}:x`;
        const missingImage = await run("--deno-image", noDeno);
        assert.equal(missingImage.code, 2, missingImage.out);
        const errLines = missingImage.stderr.split("\n").filter((l) => l.includes("--deno-image"));
        assert.equal(errLines.length, 1, missingImage.stderr);
        assert.ok(errLines[0].includes(`--deno-image ${noDeno}: not on ssh://`), errLines[0]);
        assert.doesNotMatch(missingImage.out, /probe\.txt|stage probe/);
        const volumesAfter = (await podman.listVolumes({
          signal: AbortSignal.timeout(20_000),
          labels: { [LABEL_CACHE]: undefined },
        })).map((v) => v.Name).sort();
        assert.deepEqual(volumesAfter, volumesBefore, "no cache volume created");
        for (const r of [bogus, missingImage]) {
          if (r.runId) {
            assert.deepEqual(await leftovers(podman, r.runId), {
              containers: [],
              volumes: [],
              secrets: [],
            });
          }
        }
      },
    );
  } finally {
    const signal = AbortSignal.timeout(60_000);
    for (const id of runIds) await removeRun(podman, id);
    for (const v of created) await podman.removeVolume(v, { signal }).catch(() => {});
    await runCommand("podman", ["rmi", "-f", denoImage], { timeoutMs: 60_000 }).catch(() => {});
  }
});
