import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  OverrideError,
  overrideWritePath,
  RepoError,
  repoFileName,
  writeRepoFile,
} from "../../lib/jobspec/mod.ts";
import { tempDir } from "../_helpers/mod.ts";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const fakeFetch = (status: number, body: string) => (_url: string) =>
  Promise.resolve(new Response(status === 204 ? null : body, { status }));

Deno.test("TestURL: repo file naming and writing", async () => {
  await using dir = await tempDir();
  const url = "http://mirror.example.com/fedora.repo";
  // unnamed URL repo, status 200
  const p1 = await writeRepoFile({ url }, dir.path, { fetch: fakeFetch(200, "[fedora]\n") });
  assert.equal(p1, join(dir.path, `${sha(url)}.repo`));
  assert.equal(await Deno.readTextFile(p1), "[fedora]\n");
  assert.equal((await Deno.stat(p1)).mode! & 0o777, 0o644);
  // named URL repo
  const p2 = await writeRepoFile({ name: "test", url }, dir.path, { fetch: fakeFetch(200, "x") });
  assert.equal(p2, join(dir.path, "test.repo"));
  // 404: error carrying the path; nothing half-written is left behind (fixed)
  const err = await writeRepoFile({ name: "missing", url }, dir.path, {
    fetch: fakeFetch(404, "nope"),
  }).then(() => assert.fail("accepted"), (e) => e);
  assert.ok(err instanceof RepoError);
  assert.equal(err.path, join(dir.path, "missing.repo"));
  await assert.rejects(Deno.stat(err.path!), Deno.errors.NotFound);
  // inline repo
  const inline = "[inline]\nbaseurl=x\n";
  const p3 = await writeRepoFile({ inline }, dir.path);
  assert.equal(p3, join(dir.path, `${sha(inline)}.repo`));
  assert.equal(await Deno.readTextFile(p3), inline);
  // named inline repo: spaces kept
  const p4 = await writeRepoFile({ name: "named inline repo", inline }, dir.path);
  assert.equal(p4, join(dir.path, "named inline repo.repo"));
  // exclusive: an existing file is not replaced
  await assert.rejects(writeRepoFile({ name: "test", inline: "y" }, dir.path), RepoError);
  assert.equal(await Deno.readTextFile(p2), "x");
  // 204, 206, 400 and empty bodies fail
  for (const [status, body] of [[204, ""], [206, "x"], [400, "x"], [200, ""]] as const) {
    await assert.rejects(
      writeRepoFile({ name: `s${status}${body}`, url }, dir.path, {
        fetch: fakeFetch(status, body),
      }),
      RepoError,
    );
  }
  const left = [...Deno.readDirSync(dir.path)].map((e) => e.name).sort();
  assert.equal(left.length, 4, left.join(","));
});

Deno.test("repo names cannot escape the config dir", () => {
  for (const name of ["../x", "a/b", "..", "a\\b"]) {
    assert.throws(() => repoFileName({ name, inline: "x" }), RepoError, name);
  }
  assert.throws(() => repoFileName({}), RepoError);
});

Deno.test("TestOverridePathing", () => {
  assert.throws(() => overrideWritePath({ uri: "file://x" }, "test"), OverrideError);
  assert.equal(
    overrideWritePath({ uri: "file://someplace.rpm", rpm: true }, "test"),
    "test/overrides/rpm/someplace.rpm",
  );
  assert.equal(
    overrideWritePath({ uri: "https://someplace.rpm", rpm: true }, "test"),
    "test/overrides/rpm/someplace.rpm",
  );
  assert.equal(
    overrideWritePath({ uri: "https://h/a/b.rpm?x=1", rpm: true }, "test"),
    "test/overrides/rpm/b.rpm",
  );
  assert.equal(
    overrideWritePath({ uri: "file://t", tarball: true, tarball_type: "all" }, "test"),
    "test/overrides",
  );
  assert.equal(overrideWritePath({ uri: "file://t", tarball: true }, "test"), "test/overrides");
  assert.equal(
    overrideWritePath({ uri: "file://t", tarball: true, tarball_type: "rootfs" }, "test"),
    "test/overrides/rootfs",
  );
  assert.equal(
    overrideWritePath({ uri: "file://t", tarball: true, tarball_type: "rpms" }, "test"),
    "test/overrides/rpm",
  );
  assert.equal(
    overrideWritePath({ uri: "file://t", tarball: true, tarball_type: "rpm" }, "test"),
    "test/overrides/rpm",
  );
  assert.throws(
    () =>
      overrideWritePath({ uri: "file://t", tarball: true, tarball_type: "zip" as "all" }, "test"),
    OverrideError,
  );
  assert.throws(() => overrideWritePath({ uri: "https://h/..", rpm: true }, "test"), OverrideError);
});
