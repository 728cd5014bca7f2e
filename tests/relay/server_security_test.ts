import assert from "node:assert/strict";
import { sha256File, tempDir, waitFor } from "../_helpers/mod.ts";
import { curl, readAll, s3Code, startRelayProcess } from "./server_harness.ts";

const MiB = 1024 * 1024;

async function listTree(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = `${rel}${e.name}`;
    out.push(p + (e.isDirectory ? "/" : ""));
    if (e.isDirectory) out.push(...await listTree(`${dir}/${e.name}`, p + "/"));
  }
  return out.sort();
}

Deno.test("relay: authentication, presigned URLs, traversal, crashes and races", async (t) => {
  await using tmp = await tempDir("gp-relay-sec-");
  const root = `${tmp.path}/srv`;
  await Deno.mkdir(`${root}/bkt`, { recursive: true });
  await Deno.mkdir(`${tmp.path}/outside`);
  await Deno.writeTextFile(`${tmp.path}/outside/secret.txt`, "top secret");
  await Deno.writeTextFile(`${tmp.path}/secret.txt`, "top secret");
  await Deno.writeTextFile(`${root}/bkt/ok.txt`, "fine");
  await Deno.symlink(`${tmp.path}/outside`, `${root}/bkt/linkdir`);
  await Deno.symlink(`${tmp.path}/outside/secret.txt`, `${root}/bkt/linkfile`);
  await Deno.symlink(`${tmp.path}/outside`, `${root}/escapebucket`);
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const U = relay.url;
  const mc = relay.minio();

  await t.step("unsigned requests get 403 AccessDenied and change nothing", async () => {
    for (const args of [[`${U}/`], [`${U}/bkt/ok.txt`], [`${U}/bkt?list-type=2`]]) {
      const r = await curl(relay, args, { auth: false });
      assert.equal(r.status, 403, args.join(" "));
      assert.equal(s3Code(r.body), "AccessDenied");
      assert.match(r.body, /<RequestId>[^<]+<\/RequestId>/);
      assert.match(r.body, /<Resource>[^<]+<\/Resource>/);
    }
    const put = await curl(relay, ["-T", `${tmp.path}/secret.txt`, `${U}/bkt/anon.txt`], {
      auth: false,
    });
    assert.equal(put.status, 403);
    await assert.rejects(Deno.stat(`${root}/bkt/anon.txt`), Deno.errors.NotFound);
  });

  await t.step("wrong secret: SignatureDoesNotMatch (curl and minio); unknown key", async () => {
    const r = await curl(relay, [`${U}/bkt/ok.txt`], { secretKey: "wrong" });
    assert.equal(r.status, 403);
    assert.equal(s3Code(r.body), "SignatureDoesNotMatch");
    const put = await curl(relay, ["-T", `${tmp.path}/secret.txt`, `${U}/bkt/forged.txt`], {
      secretKey: "wrong",
    });
    assert.equal(put.status, 403);
    await assert.rejects(Deno.stat(`${root}/bkt/forged.txt`), Deno.errors.NotFound);
    const bad = relay.minio({ secretKey: "0".repeat(40) });
    await assert.rejects(
      bad.getObject("bkt", "ok.txt"),
      (e: Error & { code?: string }) => e.code === "SignatureDoesNotMatch",
    );
    await assert.rejects(
      bad.putObject("bkt", "forged2.txt", "x"),
      (e: Error & { code?: string }) => e.code === "SignatureDoesNotMatch",
    );
    const Minio = await import("minio");
    const other = new Minio.Client({
      endPoint: relay.cfg.host,
      port: relay.cfg.port,
      useSSL: false,
      accessKey: "NOTTHEKEY",
      secretKey: relay.cfg.secretkey,
      region: relay.cfg.region,
    });
    await assert.rejects(
      other.putObject("bkt", "forged3.txt", "x"),
      (e: Error & { code?: string }) => e.code === "InvalidAccessKeyId",
    );
  });

  await t.step(
    "a body signed by its hash (curl --data) is checked; big ones are refused",
    async () => {
      const small = await curl(relay, [
        "-X",
        "PUT",
        "--data-binary",
        "hashed body",
        `${U}/bkt/h.txt`,
      ]);
      assert.equal(small.status, 200, small.body);
      assert.equal(await Deno.readTextFile(`${root}/bkt/h.txt`), "hashed body");
      const forged = await curl(relay, ["-X", "PUT", "--data-binary", "x", `${U}/bkt/h2.txt`], {
        secretKey: "wrong",
      });
      assert.equal(forged.status, 403);
      await Deno.writeFile(`${tmp.path}/2m.bin`, new Uint8Array(2 * MiB));
      const big = await curl(relay, [
        "-X",
        "PUT",
        "--data-binary",
        `@${tmp.path}/2m.bin`,
        `${U}/bkt/h3.bin`,
      ]);
      assert.equal(big.status, 403);
      assert.match(big.body, /x-amz-content-sha256/);
      await assert.rejects(Deno.stat(`${root}/bkt/h3.bin`), Deno.errors.NotFound);
      await Deno.remove(`${root}/bkt/h.txt`);
    },
  );

  await t.step("presigned GET and PUT work, tampering fails, expiry is enforced", async () => {
    const url = await mc.presignedGetObject("bkt", "ok.txt", 60);
    const r = await curl(relay, [url], { auth: false });
    assert.equal(r.status, 200);
    assert.equal(r.body, "fine");
    const tampered = url.replace(
      /X-Amz-Signature=([0-9a-f])/,
      (_m, c) => `X-Amz-Signature=${c === "0" ? "1" : "0"}`,
    );
    const rt = await curl(relay, [tampered], { auth: false });
    assert.equal(rt.status, 403);
    assert.equal(s3Code(rt.body), "SignatureDoesNotMatch");
    const other = await curl(relay, [url.replace("/bkt/ok.txt", "/bkt/linkfile")], { auth: false });
    assert.equal(other.status, 403, "a presigned URL is valid for its own key only");
    const putUrl = await mc.presignedPutObject("bkt", "presigned.txt", 60);
    const up = await curl(relay, ["-T", `${tmp.path}/secret.txt`, putUrl], { auth: false });
    assert.equal(up.status, 200, up.body);
    assert.equal(await Deno.readTextFile(`${root}/bkt/presigned.txt`), "top secret");
    // Expiry: a 1-second URL works now and is refused once it has expired.
    const short = await mc.presignedGetObject("bkt", "ok.txt", 1);
    const first = await curl(relay, [short], { auth: false });
    assert.ok(first.status === 200 || first.status === 403);
    const expired = await waitFor(async () => {
      const x = await curl(relay, [short], { auth: false });
      return x.status === 403 ? x : undefined;
    }, { timeoutMs: 8000, intervalMs: 250, what: "presigned URL to expire" });
    assert.equal(s3Code(expired.body), "AccessDenied");
    assert.match(expired.body, /expired/);
  });

  await t.step("keys escaping the root are refused; nothing written outside", async () => {
    const before = await listTree(tmp.path);
    const f = `${tmp.path}/outside/secret.txt`;
    const attempts: [string, string[]][] = [
      ["dotdot", ["--path-as-is", "-T", f, `${U}/bkt/../pwned.txt`]],
      ["dotdot deep", ["--path-as-is", "-T", f, `${U}/bkt/a/../../pwned.txt`]],
      ["encoded dotdot", ["--path-as-is", "-T", f, `${U}/bkt/%2E%2E/pwned.txt`]],
      ["encoded slash dotdot", ["--path-as-is", "-T", f, `${U}/bkt/x%2F..%2F..%2Fpwned.txt`]],
      ["absolute", ["--path-as-is", "-T", f, `${U}/bkt//tmp/pwned.txt`]],
      ["backslash", ["--path-as-is", "-T", f, `${U}/bkt/..%5C..%5Cpwned.txt`]],
      ["nul", ["--path-as-is", "-T", f, `${U}/bkt/pwned%00.txt`]],
      ["dotdot bucket", ["--path-as-is", "-T", f, `${U}/%2E%2E/pwned.txt`]],
      ["through dir symlink", ["-T", f, `${U}/bkt/linkdir/pwned.txt`]],
      ["bucket symlink", ["-T", f, `${U}/escapebucket/pwned.txt`]],
    ];
    for (const [what, args] of attempts) {
      const r = await curl(relay, args);
      assert.ok(r.status === 400 || r.status === 403 || r.status === 404, `${what}: ${r.status}`);
    }
    const reads: [string, string[]][] = [
      ["read dotdot", ["--path-as-is", `${U}/bkt/../../secret.txt`]],
      ["read encoded", ["--path-as-is", `${U}/bkt/%2E%2E/%2E%2E/secret.txt`]],
      ["read dir symlink", [`${U}/bkt/linkdir/secret.txt`]],
      ["read file symlink", [`${U}/bkt/linkfile`]],
      ["read bucket symlink", [`${U}/escapebucket/secret.txt`]],
    ];
    for (const [what, args] of reads) {
      const r = await curl(relay, args);
      assert.ok(r.status === 400 || r.status === 403 || r.status === 404, `${what}: ${r.status}`);
      assert.ok(!r.body.includes("top secret"), what);
    }
    assert.deepEqual(await listTree(tmp.path), before);
    assert.ok(!(await listTree(tmp.path)).some((p) => p.includes("pwned")));
    // listings do not follow symlinks out of the bucket
    const names: string[] = [];
    for await (const o of mc.listObjectsV2("bkt", "", true)) names.push(o.name!);
    assert.deepEqual(names, ["ok.txt", "presigned.txt"]);
    assert.ok(!(await mc.listBuckets()).some((b) => b.name === "escapebucket"));
  });

  await t.step("an upload killed mid-body leaves no object and no temp file", async () => {
    const big = `${tmp.path}/big.bin`;
    await Deno.writeFile(big, new Uint8Array(32 * MiB));
    const stateTmp = `${root}/.gangplank-relay/tmp`;
    const child = new Deno.Command("curl", {
      args: [
        "-s",
        "-K",
        "-",
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--limit-rate",
        "2M",
        "-T",
        big,
        `${U}/bkt/killed.bin`,
      ],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(
      new TextEncoder().encode(`user = "${relay.cfg.accesskey}:${relay.cfg.secretkey}"\n`),
    );
    await w.close();
    // Wait until the relay is writing a temp file, then kill the client.
    await waitFor(async () => {
      for await (const e of Deno.readDir(stateTmp)) {
        if ((await Deno.stat(`${stateTmp}/${e.name}`)).size > 0) return true;
      }
      return false;
    }, { timeoutMs: 10_000, what: "upload in progress" });
    child.kill("SIGKILL");
    await child.status;
    await waitFor(async () => {
      for await (const _ of Deno.readDir(stateTmp)) return false;
      return true;
    }, { timeoutMs: 10_000, what: "temp file removed" });
    await assert.rejects(Deno.stat(`${root}/bkt/killed.bin`), Deno.errors.NotFound);
    const head = await curl(relay, ["-I", `${U}/bkt/killed.bin`]);
    assert.equal(head.status, 404);
    assert.ok(!(await listTree(root)).some((p) => p.includes("killed")));
  });

  await t.step("two concurrent writers of one key: one whole object wins", async () => {
    const a = `${tmp.path}/a.bin`;
    const b = `${tmp.path}/b.bin`;
    await Deno.writeFile(a, new Uint8Array(8 * MiB).fill(0x61));
    await Deno.writeFile(b, new Uint8Array(8 * MiB + 17).fill(0x62));
    for (let round = 0; round < 3; round++) {
      const [ra, rb] = await Promise.all([
        curl(relay, ["-T", a, `${U}/bkt/race.bin`]),
        curl(relay, ["-T", b, `${U}/bkt/race.bin`]),
      ]);
      assert.equal(ra.status, 200);
      assert.equal(rb.status, 200);
      const got = await sha256File(`${root}/bkt/race.bin`);
      assert.ok(
        [await sha256File(a), await sha256File(b)].includes(got),
        "object is one of the two",
      );
      const st = await mc.statObject("bkt", "race.bin");
      const body = await readAll(await mc.getObject("bkt", "race.bin"));
      assert.equal(st.size, body.length);
    }
  });

  assert.equal((await relay.stop()).code, 0);
});
