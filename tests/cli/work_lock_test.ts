/**
 * The work dir lock: a second run into a held dir is refused at once, naming the dir and the
 * holder's pid, and changes nothing; the lock goes when its run ends; a lock left by a run
 * killed with SIGKILL is taken over (the kernel dropped it), saying whose it was.
 */
import assert from "node:assert/strict";
import {
  checkWorkDirFree,
  lockWorkDir,
  WORK_LOCK_FILE,
  WorkDirBusyError,
} from "../../lib/cli/work_lock.ts";
import { tempDir, treeSnapshot as snapshot } from "../_helpers/mod.ts";
import { startLockHolder } from "./_lock_holder.ts";

const signal = new AbortController().signal;

Deno.test("work dir lock: a second locker is refused at once, naming the dir and holder; nothing changes", async () => {
  await using tmp = await tempDir();
  const warnings: string[] = [];
  const warn = (l: string) => warnings.push(l);
  await Deno.writeTextFile(`${tmp.path}/keep.txt`, "x");
  {
    await using held = await lockWorkDir(tmp.path, { runId: "gp-first", pid: 4242 }, {
      flag: "-w w",
      warn,
      signal,
    });
    assert.equal(held.holder.pid, 4242);
    assert.equal(Deno.statSync(`${tmp.path}/${WORK_LOCK_FILE}`).mode! & 0o777, 0o600);
    const before = snapshot(tmp.path);
    const t0 = Date.now();
    const err = await lockWorkDir(tmp.path, { runId: "gp-second", pid: 1 }, {
      flag: "-w w",
      warn,
      signal,
    }).then(() => undefined, (e) => e);
    assert.ok(err instanceof WorkDirBusyError, String(err));
    assert.equal(err.exitCode, 2);
    assert.equal(err.holder?.runId, "gp-first");
    assert.equal(
      err.message.split("\n").length,
      1,
    );
    assert.match(
      err.message,
      new RegExp(
        `^-w w: work dir ${tmp.path} is in use by run gp-first \\(coordinator pid 4242 on `,
      ),
    );
    await assert.rejects(
      checkWorkDirFree(tmp.path, { flag: "--resume w", signal }),
      /^WorkDirBusyError: --resume w: work dir .* in use by run gp-first \(coordinator pid 4242/,
    );
    assert.ok(Date.now() - t0 < 5_000, "refused at once");
    assert.equal(snapshot(tmp.path), before);
  }
  // Released: the file is gone and the next run takes the lock without a word.
  assert.deepEqual([...Deno.readDirSync(tmp.path)].map((e) => e.name), ["keep.txt"]);
  await checkWorkDirFree(tmp.path, { flag: "-w w", signal });
  await using again = await lockWorkDir(tmp.path, { runId: "gp-third" }, {
    flag: "-w w",
    warn,
    signal,
  });
  assert.equal(again.holder.runId, "gp-third");
  assert.deepEqual(warnings, []);
});

Deno.test("work dir lock: held by another process until kill -9, then taken over with a message", async () => {
  await using tmp = await tempDir();
  await using holder = await startLockHolder(tmp.path);
  await assert.rejects(
    lockWorkDir(tmp.path, { runId: "gp-me" }, { flag: "-w w", warn: () => {}, signal }),
    (e) => e instanceof WorkDirBusyError && e.holder?.pid === holder.pid,
  );
  await holder.kill9();
  // The file stays (nobody removed it), but no process holds it any more.
  const left = JSON.parse(await Deno.readTextFile(`${tmp.path}/${WORK_LOCK_FILE}`));
  assert.equal(left.pid, holder.pid);
  const warnings: string[] = [];
  await using mine = await lockWorkDir(tmp.path, { runId: "gp-me", pid: Deno.pid }, {
    flag: "-w w",
    warn: (l) => warnings.push(l),
    signal,
  });
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0],
    new RegExp(`taking over the lock left by run gp-holder \\(coordinator pid ${holder.pid} `),
  );
  const now = JSON.parse(await Deno.readTextFile(`${tmp.path}/${WORK_LOCK_FILE}`));
  assert.equal(now.pid, Deno.pid);
  assert.equal(now.runId, mine.holder.runId);
});

Deno.test("work dir lock: a left lock file naming a live but unrelated pid (reused) is taken over", async () => {
  await using tmp = await tempDir();
  // pid 1 always runs: a scheme trusting "is that pid alive?" would call the dir busy forever.
  const stale = { runId: "gp-old", pid: 1, host: "here", since: "2026-01-01T00:00:00.000Z" };
  await Deno.writeTextFile(`${tmp.path}/${WORK_LOCK_FILE}`, JSON.stringify(stale) + "\n");
  await checkWorkDirFree(tmp.path, { flag: "--resume w", signal });
  const warnings: string[] = [];
  await using mine = await lockWorkDir(tmp.path, { runId: "gp-new", pid: Deno.pid }, {
    flag: "-w w",
    warn: (l) => warnings.push(l),
    signal,
  });
  assert.deepEqual(warnings, [
    "gangplank: -w w: taking over the lock left by run gp-old (coordinator pid 1 on here), which no longer holds it",
  ]);
  const now = JSON.parse(await Deno.readTextFile(`${tmp.path}/${WORK_LOCK_FILE}`));
  assert.deepEqual([now.runId, now.pid], ["gp-new", Deno.pid]);
  assert.equal(mine.holder.runId, "gp-new");
});
