import assert from "node:assert/strict";
import {
  LogDemuxer,
  normaliseArch,
  PodmanClient,
  PodmanError,
  removeByLabels,
  runContainer,
  StreamLineSplitter,
} from "../../lib/podman/mod.ts";
import { ensureTestImage, podmanMissing, startPodmanService } from "../_helpers/podman.ts";

function frame(kind: 1 | 2, text: string): Uint8Array {
  const p = new TextEncoder().encode(text);
  const b = new Uint8Array(8 + p.length);
  b[0] = kind;
  new DataView(b.buffer).setUint32(4, p.length);
  b.set(p, 8);
  return b;
}

Deno.test("LogDemuxer + StreamLineSplitter: frames split across chunks, partial lines, both streams", () => {
  const lines: string[] = [];
  const split = new StreamLineSplitter((l, s) => lines.push(`${s}:${l}`));
  const demux = new LogDemuxer((s, p) => split.push(s, p));
  const all = new Uint8Array([
    ...frame(1, "a1\na2\n"),
    ...frame(2, "e1\n"),
    ...frame(1, "par"),
    ...frame(1, "tial\n"),
    ...frame(1, "tail-no-newline"),
  ]);
  // Feed byte by byte: headers and payloads cut at every position.
  for (const b of all) demux.push(new Uint8Array([b]));
  split.flush();
  assert.equal(demux.frames, 5);
  assert.deepEqual(lines, [
    "stdout:a1",
    "stdout:a2",
    "stderr:e1",
    "stdout:partial",
    "stdout:tail-no-newline",
  ]);
});

Deno.test("normaliseArch maps podman's GOARCH names to cosa's", () => {
  assert.equal(normaliseArch("amd64"), "x86_64");
  assert.equal(normaliseArch("arm64"), "aarch64");
  assert.equal(normaliseArch("s390x"), "s390x");
  assert.equal(normaliseArch("ppc64le"), "ppc64le");
});

const missing = podmanMissing();
if (missing) console.log(`SKIP tests/podman/client_test.ts API tests: ${missing}`);

Deno.test({
  name: "libpod client against a real podman system service",
  ignore: missing !== undefined,
  sanitizeOps: true,
  sanitizeResources: true,
}, async (t) => {
  const image = await ensureTestImage({ minimal: true });
  await using svc = await startPodmanService();
  const podman = PodmanClient.unix(svc.socketPath);
  const signal = AbortSignal.timeout(120_000);
  const runLabel = { "gangplank.run-id": `test-${crypto.randomUUID().slice(0, 8)}` };

  await t.step("info: arch normalised", async () => {
    const arch = await podman.arch({ signal });
    const expected = Deno.build.arch === "x86_64" ? "x86_64" : "aarch64";
    assert.equal(arch, expected);
  });

  await t.step("image exists / missing", async () => {
    assert.equal(await podman.imageExists(image, { signal }), true);
    assert.equal(await podman.imageExists("localhost/does-not-exist:nope", { signal }), false);
  });

  await t.step("run a fast container: every line, no lost tail, exit code, removed", async () => {
    const got: string[] = [];
    let id = "";
    const script = "for i in $(seq 1 300); do echo out$i; done; echo err1 >&2; " +
      "printf last-without-newline; exit 3";
    const res = await runContainer(podman, {
      image,
      command: ["/bin/sh", "-c", script],
      labels: runLabel,
    }, { signal, onLine: (l, s) => got.push(`${s}:${l}`), onCreated: (i) => (id = i) });
    assert.equal(res.exitCode, 3);
    assert.equal(res.id, id);
    const out = got.filter((l) => l.startsWith("stdout:"));
    assert.equal(out.length, 301, `stdout lines: ${out.length}`);
    assert.equal(out[0], "stdout:out1");
    assert.equal(out[299], "stdout:out300");
    assert.equal(out[300], "stdout:last-without-newline");
    assert.deepEqual(got.filter((l) => l.startsWith("stderr:")), ["stderr:err1"]);
    assert.deepEqual(await podman.listContainers({ signal, labels: runLabel }), []);
  });

  await t.step("a container that exits instantly still delivers its output", async () => {
    for (let i = 0; i < 3; i++) {
      const got: string[] = [];
      const res = await runContainer(podman, {
        image,
        command: ["/bin/echo", `quick-${i}`],
        labels: runLabel,
      }, { signal, onLine: (l) => got.push(l) });
      assert.equal(res.exitCode, 0);
      assert.deepEqual(got, [`quick-${i}`]);
    }
  });

  await t.step("abort mid-run removes the container", async () => {
    const ctl = new AbortController();
    let created = "";
    const p = runContainer(podman, {
      image,
      command: ["/bin/sh", "-c", "echo started; sleep 60"],
      labels: runLabel,
    }, {
      signal: ctl.signal,
      onLine: (l) => {
        if (l === "started") ctl.abort(new Error("test abort"));
      },
      onCreated: (i) => (created = i),
    });
    await assert.rejects(p, /test abort/);
    assert.notEqual(created, "");
    assert.deepEqual(await podman.listContainers({ signal, labels: runLabel }), []);
  });

  await t.step("errors are typed with the HTTP status", async () => {
    const err = await podman.createContainer({ image: "localhost/does-not-exist:nope" }, {
      signal,
    }).catch((e) => e);
    assert.ok(err instanceof PodmanError, String(err));
    assert.ok(err.status >= 400, `status ${err.status}`);
  });

  await t.step("volumes, secrets, and cleanup by label", async () => {
    const vol = `gp-test-vol-${crypto.randomUUID().slice(0, 8)}`;
    await podman.createVolume(vol, { signal, labels: runLabel });
    const id = await podman.createContainer({
      image,
      command: ["/bin/sleep", "60"],
      labels: runLabel,
      volumes: [{ Name: vol, Dest: "/srv" }],
    }, { signal });
    await podman.startContainer(id, { signal });
    const removed = await removeByLabels(podman, runLabel, { signal });
    assert.deepEqual(removed.containers, [id]);
    assert.deepEqual(removed.volumes, [vol]);
    assert.deepEqual(await podman.listContainers({ signal, labels: runLabel }), []);
    assert.deepEqual(await podman.listVolumes({ signal, labels: runLabel }), []);

    const sec = `gp-test-secret-${crypto.randomUUID().slice(0, 8)}`;
    await podman.createSecret(sec, "s3cr3t-value", { signal });
    assert.ok((await podman.listSecrets({ signal })).some((s) => s.Spec.Name === sec));
    await podman.removeSecret(sec, { signal });
    assert.ok(!(await podman.listSecrets({ signal })).some((s) => s.Spec.Name === sec));
  });
});
