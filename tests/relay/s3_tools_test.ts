/**
 * The relay with the S3 tools users point at it, each run as a user runs it: the aws CLI
 * (`aws s3 presign` with its default configuration signs SigV2 URLs), s3cmd (`signurl`,
 * SigV2), boto3, npm:minio and curl. Non-ASCII header values, checksums that must be refused,
 * aws-chunked trailers, and `Expect: 100-continue` on a refused request.
 *
 * Credentials reach the tools through environment variables or 0600 files, never argv.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as fs from "node:fs";
import { runCommand, tempDir } from "../_helpers/mod.ts";
import { curl, readAll, type RelayProcess, s3Code, startRelayProcess } from "./server_harness.ts";
import { checksumOf } from "../../lib/relay/checksums.ts";

function awsEnv(relay: RelayProcess, home: string): Record<string, string> {
  return {
    HOME: home,
    AWS_ACCESS_KEY_ID: relay.cfg.accesskey,
    AWS_SECRET_ACCESS_KEY: relay.cfg.secretkey,
    AWS_DEFAULT_REGION: relay.cfg.region,
    AWS_MAX_ATTEMPTS: "1",
    AWS_CONFIG_FILE: `${home}/aws-config-none`,
    AWS_SHARED_CREDENTIALS_FILE: `${home}/aws-credentials-none`,
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
  };
}

async function aws(relay: RelayProcess, home: string, args: string[]) {
  return await runCommand("aws", ["--endpoint-url", relay.url, ...args], {
    env: awsEnv(relay, home),
    timeoutMs: 60_000,
  });
}

Deno.test("S3 tools: presigned SigV2 URLs, non-ASCII headers, checksums, 100-continue", async (t) => {
  await using tmp = await tempDir("gp-s3tools-");
  const root = `${tmp.path}/data`;
  await Deno.mkdir(`${root}/tools`, { recursive: true });
  await using relay = await startRelayProcess(root, `${tmp.path}/minio.json`);
  const home = `${tmp.path}/home`;
  await Deno.mkdir(home);
  const mc = relay.minio();
  await mc.putObject("tools", "hello.txt", Buffer.from("hello\n"));

  await t.step(
    "aws s3 presign (default config, SigV2) URL downloads; a forged one does not",
    async () => {
      const r = await aws(relay, home, ["s3", "presign", "s3://tools/hello.txt"]);
      assert.equal(r.code, 0, r.stderr);
      const url = r.stdout.trim();
      assert.match(
        url,
        /AWSAccessKeyId=.*Signature=/,
        "the aws CLI signs presigned URLs with SigV2",
      );
      const get = await curl(relay, [url], { auth: false });
      assert.equal(get.status, 200, get.body);
      assert.equal(get.body, "hello\n");
      const forged = await curl(relay, [url.replace("hello.txt", "hello.tx")], { auth: false });
      assert.equal(forged.status, 403);
      assert.equal(s3Code(forged.body), "SignatureDoesNotMatch");
    },
  );

  await t.step("s3cmd signurl URL downloads; its header-signed requests work", async () => {
    const cfg = `${tmp.path}/s3cfg`;
    await Deno.writeTextFile(
      cfg,
      `[default]\naccess_key = ${relay.cfg.accesskey}\nsecret_key = ${relay.cfg.secretkey}\n` +
        `host_base = ${relay.cfg.host}:${relay.cfg.port}\n` +
        `host_bucket = ${relay.cfg.host}:${relay.cfg.port}\nuse_https = False\n` +
        `signature_v2 = True\n`,
      { mode: 0o600 },
    );
    const env = { HOME: home, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
    const r = await runCommand("s3cmd", ["-c", cfg, "signurl", "s3://tools/hello.txt", "+600"], {
      env,
    });
    assert.equal(r.code, 0, r.stderr);
    const get = await curl(relay, [r.stdout.trim()], { auth: false });
    assert.equal(get.status, 200, get.body);
    assert.equal(get.body, "hello\n");
    // s3cmd with signature_v2 signs every request with SigV2 headers.
    const src = `${tmp.path}/s3cmd.txt`;
    await Deno.writeTextFile(src, "from s3cmd\n");
    const put = await runCommand("s3cmd", ["-c", cfg, "put", src, "s3://tools/s3cmd.txt"], {
      env,
    });
    assert.equal(put.code, 0, put.stderr);
    assert.equal(await Deno.readTextFile(`${root}/tools/s3cmd.txt`), "from s3cmd\n");
  });

  await t.step(
    "non-ASCII metadata and Content-Disposition: npm:minio, boto3, aws CLI",
    async () => {
      // npm:minio (node:http sends latin1 bytes, signs their UTF-8 form).
      await mc.putObject("tools", "minio.txt", Buffer.from("m"), 1, {
        "X-Amz-Meta-Name": "Grüße",
        "Content-Disposition": 'attachment; filename="Grüße.txt"',
      });
      const st = await mc.statObject("tools", "minio.txt");
      assert.equal(st.metaData["name"], "Grüße");
      assert.equal(st.metaData["content-disposition"], 'attachment; filename="Grüße.txt"');

      // boto3 sends header values as UTF-8 bytes; a value beyond latin1 comes back as an RFC 2047
      // encoded-word (S3's documented form), which Python's email.header decodes.
      const py = `
import boto3, sys, json, email.header
from botocore.client import Config
c = boto3.client("s3", endpoint_url=sys.argv[1], config=Config(signature_version="s3v4"))
def add(**kw):
    kw["params"]["headers"]["x-amz-meta-name"] = "Grüße €"
    kw["params"]["headers"]["Content-Disposition"] = 'attachment; filename="Grüße €.txt"'
c.meta.events.register("before-call.s3.PutObject", add)
c.put_object(Bucket="tools", Key="boto3.txt", Body=b"b")
h = c.head_object(Bucket="tools", Key="boto3.txt")
dec = lambda v: "".join(p.decode(cs) if isinstance(p, bytes) else p for p, cs in email.header.decode_header(v))
print(json.dumps({"name": dec(h["Metadata"]["name"]), "cd": dec(h["ContentDisposition"])}))
`;
      const b = await runCommand("/usr/bin/python3", ["-c", py, relay.url], {
        env: awsEnv(relay, home),
      });
      assert.equal(b.code, 0, b.stderr);
      assert.deepEqual(JSON.parse(b.stdout), {
        name: "Grüße €",
        cd: 'attachment; filename="Grüße €.txt"',
      });

      // The aws CLI refuses non-ASCII metadata itself ("S3 metadata can only contain ASCII"),
      // but sends other headers as UTF-8.
      const src = `${tmp.path}/cli.txt`;
      await Deno.writeTextFile(src, "c");
      const put = await aws(relay, home, [
        "s3api",
        "put-object",
        "--bucket",
        "tools",
        "--key",
        "cli.txt",
        "--body",
        src,
        "--content-disposition",
        'attachment; filename="Grüße.txt"',
      ]);
      assert.equal(put.code, 0, put.stderr);
      const head = await aws(relay, home, [
        "s3api",
        "head-object",
        "--bucket",
        "tools",
        "--key",
        "cli.txt",
      ]);
      assert.equal(head.code, 0, head.stderr);
      assert.equal(JSON.parse(head.stdout).ContentDisposition, 'attachment; filename="Grüße.txt"');
    },
  );

  await t.step("a wrong x-amz-checksum-crc32 is refused and nothing is written", async () => {
    const src = `${tmp.path}/ck.txt`;
    await Deno.writeTextFile(src, "checked\n");
    const bad = await aws(relay, home, [
      "s3api",
      "put-object",
      "--bucket",
      "tools",
      "--key",
      "ck-bad.txt",
      "--body",
      src,
      "--checksum-crc32",
      "AAAAAA==",
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /BadDigest/);
    assert.equal(fs.existsSync(`${root}/tools/ck-bad.txt`), false);
    const crc = checksumOf("crc32", new TextEncoder().encode("checked\n"));
    const good = await aws(relay, home, [
      "s3api",
      "put-object",
      "--bucket",
      "tools",
      "--key",
      "ck.txt",
      "--body",
      src,
      "--checksum-crc32",
      crc,
    ]);
    assert.equal(good.code, 0, good.stderr);
    const head = await aws(relay, home, [
      "s3api",
      "head-object",
      "--bucket",
      "tools",
      "--key",
      "ck.txt",
      "--checksum-mode",
      "ENABLED",
    ]);
    assert.equal(JSON.parse(head.stdout).ChecksumCRC32, crc);
    // The same refusal over curl, for each algorithm.
    for (const alg of ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"] as const) {
      const wrong = checksumOf(alg, new TextEncoder().encode("other"));
      const r = await curl(relay, [
        "-X",
        "PUT",
        "-H",
        `x-amz-checksum-${alg}: ${wrong}`,
        "--data-binary",
        "checked",
        `${relay.url}/tools/curl-${alg}.txt`,
      ]);
      assert.equal(r.status, 400, `${alg}: ${r.body}`);
      assert.equal(s3Code(r.body), "BadDigest");
      assert.equal(fs.existsSync(`${root}/tools/curl-${alg}.txt`), false);
    }
  });

  await t.step(
    "aws-chunked bodies with a trailing checksum: verified, stored, returned",
    async () => {
      const payload = new TextEncoder().encode("trailer payload");
      const frame = (trailer: string) =>
        `${payload.length.toString(16)}\r\n${new TextDecoder().decode(payload)}\r\n0\r\n` +
        `x-amz-checksum-crc32c:${trailer}\r\n\r\n`;
      const send = (key: string, trailer: string) =>
        curl(relay, [
          "-X",
          "PUT",
          "-H",
          "x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER",
          "-H",
          "content-encoding: aws-chunked",
          "-H",
          "x-amz-trailer: x-amz-checksum-crc32c",
          "-H",
          `x-amz-decoded-content-length: ${payload.length}`,
          "--data-binary",
          frame(trailer),
          `${relay.url}/tools/${key}`,
        ]);
      const wrong = await send("trailer-bad.txt", checksumOf("crc32c", new Uint8Array([1])));
      assert.equal(wrong.status, 400, wrong.body);
      assert.equal(s3Code(wrong.body), "BadDigest");
      assert.equal(fs.existsSync(`${root}/tools/trailer-bad.txt`), false);
      const crc = checksumOf("crc32c", payload);
      const ok = await send("trailer.txt", crc);
      assert.equal(ok.status, 200, ok.body);
      assert.equal(await Deno.readTextFile(`${root}/tools/trailer.txt`), "trailer payload");
      const head = await curl(relay, [
        "-I",
        "-H",
        "x-amz-checksum-mode: ENABLED",
        `${relay.url}/tools/trailer.txt`,
      ]);
      assert.equal(head.headers["x-amz-checksum-crc32c"], crc);
    },
  );

  await t.step("Expect: 100-continue: a refused request never gets its 100", async () => {
    // Signed with a declared payload hash: the signature is checkable from the headers. (A
    // request without x-amz-content-sha256, curl < 8, may have signed its body's hash, so
    // the relay needs the body, and sends the 100, before it can decide.)
    const body = `${tmp.path}/body.bin`;
    await Deno.writeFile(body, new Uint8Array(256 << 10));
    const r = await curl(relay, [
      "-v",
      "-X",
      "PUT",
      "-H",
      "Expect: 100-continue",
      "-H",
      "x-amz-content-sha256: UNSIGNED-PAYLOAD",
      "--data-binary",
      `@${body}`,
      `${relay.url}/tools/continue.bin`,
    ], { secretKey: "wrong-secret-wrong-secret-wrong-secret00" });
    assert.equal(r.status, 403);
    assert.doesNotMatch(r.stderr, /HTTP\/1\.1 100/);
    assert.equal(fs.existsSync(`${root}/tools/continue.bin`), false);
    const good = await curl(relay, [
      "-v",
      "-X",
      "PUT",
      "-H",
      "Expect: 100-continue",
      "-H",
      "x-amz-content-sha256: UNSIGNED-PAYLOAD",
      "--data-binary",
      `@${body}`,
      `${relay.url}/tools/continue.bin`,
    ]);
    assert.equal(good.status, 200, good.body);
    assert.match(good.stderr, /HTTP\/1\.1 100/);
    assert.equal((await Deno.stat(`${root}/tools/continue.bin`)).size, 256 << 10);
  });

  await t.step("npm:minio reads what the others wrote", async () => {
    const got = await readAll(await mc.getObject("tools", "trailer.txt"));
    assert.equal(got.toString(), "trailer payload");
  });
});
