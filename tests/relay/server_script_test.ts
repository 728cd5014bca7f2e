import assert from "node:assert/strict";
import { runScript, tempDir, waitFor } from "../_helpers/mod.ts";
import { curl, startRelayProcess } from "./server_harness.ts";
import { readRelayConfig, RelayConfigError } from "../../lib/relay/mod.ts";

Deno.test("relay script: config 0600, bucket dirs, clean SIGTERM, nothing removed", async () => {
  await using tmp = await tempDir("gp-relay-script-");
  const root = `${tmp.path}/work`;
  await Deno.mkdir(`${root}/source`, { recursive: true });
  await Deno.writeTextFile(`${root}/source/keep.sh`, "echo hi\n");
  const cfgPath = `${tmp.path}/minio.json`;
  const relay = await startRelayProcess(root, cfgPath, ["--bucket-dir", "builder=builds"]);
  try {
    const st = await Deno.stat(cfgPath);
    assert.equal(st.mode! & 0o777, 0o600);
    const cfg = await readRelayConfig(cfgPath);
    assert.equal(cfg.host, "127.0.0.1");
    assert.equal(cfg.external_server, true);
    assert.equal(cfg.secure, false);
    assert.ok(cfg.port > 0);
    assert.ok(cfg.secretkey.length >= 32 && cfg.accesskey.length >= 16);
    // builder bucket lands in <root>/builds
    const mc = relay.minio();
    await mc.makeBucket("builder", cfg.region);
    await mc.putObject("builder", "42/x86_64/meta.json", "{}");
    assert.equal(await Deno.readTextFile(`${root}/builds/42/x86_64/meta.json`), "{}");
    const buckets = (await mc.listBuckets()).map((b) => b.name).sort();
    assert.deepEqual(buckets, ["builder", "source"]);
    const asDir = await curl(relay, [`${relay.url}/builds/42/x86_64/meta.json`]);
    assert.equal(asDir.status, 404, "the aliased folder is not a second bucket");
    // a second relay refuses to overwrite the config
    const second = await runScript("relay.ts", ["-d", root, "-m", cfgPath], { timeoutMs: 20_000 });
    assert.equal(second.code, 2);
    assert.equal(second.stderr.trim().split("\n").length, 1, second.stderr);
    assert.match(second.stderr, /refus|exists/);
    assert.deepEqual(await readRelayConfig(cfgPath), cfg, "config untouched");
  } finally {
    const out = await relay.stop("SIGTERM");
    assert.equal(out.code, 0, out.stderr);
    assert.ok(
      !out.stdout.includes(relay.cfg.secretkey) && !out.stderr.includes(relay.cfg.secretkey),
    );
    assert.match(out.stdout, new RegExp(`127\\.0\\.0\\.1:${relay.cfg.port}`));
  }
  // nothing of the served dir removed
  assert.equal(await Deno.readTextFile(`${root}/source/keep.sh`), "echo hi\n");
  assert.equal(await Deno.readTextFile(`${root}/builds/42/x86_64/meta.json`), "{}");
  // the port is released
  await waitFor(() => {
    try {
      Deno.listen({ hostname: "127.0.0.1", port: relay.cfg.port }).close();
      return true;
    } catch {
      return false;
    }
  }, { timeoutMs: 5000, what: "port released" });
});

Deno.test("relay script: SIGINT exits 0; explicit --port", async () => {
  await using tmp = await tempDir("gp-relay-script2-");
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const relay = await startRelayProcess(tmp.path, `${tmp.path}/m.json`, ["--port", String(port)]);
  assert.equal(relay.cfg.port, port);
  const r = await curl(relay, [`${relay.url}/`]);
  assert.equal(r.status, 200);
  // the port is taken now: a second relay fails with one clear line, writes no config
  const busy = await runScript("relay.ts", [
    "-d",
    tmp.path,
    "-m",
    `${tmp.path}/m2.json`,
    "--port",
    String(port),
  ], {
    timeoutMs: 20_000,
  });
  assert.equal(busy.code, 1, busy.stderr);
  assert.match(busy.stderr, /cannot listen.*EADDRINUSE/);
  assert.equal(busy.stderr.trim().split("\n").length, 1, busy.stderr);
  await assert.rejects(Deno.stat(`${tmp.path}/m2.json`), Deno.errors.NotFound);
  const out = await relay.stop("SIGINT");
  assert.equal(out.code, 0, out.stderr);
});

Deno.test("relay script: bad flags and bad input exit 2 with one line", async () => {
  await using tmp = await tempDir("gp-relay-flags-");
  const cases: string[][] = [
    [],
    ["-d", tmp.path],
    ["-m", `${tmp.path}/x.json`],
    ["-d", `${tmp.path}/missing`, "-m", `${tmp.path}/x.json`],
    ["-d", tmp.path, "-m", `${tmp.path}/x.json`, "--port", "70000"],
    ["-d", tmp.path, "-m", `${tmp.path}/x.json`, "--bucket-dir", "nodir"],
    ["-d", tmp.path, "-m", `${tmp.path}/x.json`, "--bogus"],
    ["-d", tmp.path, "-m", `${tmp.path}/x.json`, "extra"],
  ];
  for (const args of cases) {
    const r = await runScript("relay.ts", args, { timeoutMs: 20_000 });
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, `${args.join(" ")}: ${r.stderr}`);
    await assert.rejects(Deno.stat(`${tmp.path}/x.json`), Deno.errors.NotFound);
  }
  const help = await runScript("relay.ts", ["--help"], { timeoutMs: 20_000 });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--minio-config/);
});

Deno.test("relay config: validation names file and field", async () => {
  await using tmp = await tempDir("gp-relay-cfg-");
  const f = `${tmp.path}/c.json`;
  await Deno.writeTextFile(
    f,
    JSON.stringify({ accesskey: "a", secretkey: "b", host: "h", port: "9000" }),
  );
  await assert.rejects(readRelayConfig(f), (e: Error) => {
    assert.ok(e instanceof RelayConfigError);
    assert.equal(e.field, "port");
    assert.ok(e.message.includes(f));
    return true;
  });
  await Deno.writeTextFile(f, "{nope");
  await assert.rejects(readRelayConfig(f), RelayConfigError);
  await Deno.writeTextFile(
    f,
    JSON.stringify({ accesskey: "a", secretkey: "b", host: "h", port: 9 }),
  );
  const ok = await readRelayConfig(f);
  assert.equal(ok.region, "us-east-1");
  assert.equal(ok.external_server, true);
});
