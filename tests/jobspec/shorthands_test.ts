import assert from "node:assert/strict";
import {
  buildArtifactCommand,
  canArtifact,
  CloudConfigError,
  defaultJobSpec,
  isValidArtifactShortHand,
  type JobSpec,
  KOLA_TESTS,
  parseJobSpec,
  producedArtifacts,
  publishCommand,
  renderTemplate,
  ShorthandError,
  stageCommands,
} from "../../lib/jobspec/mod.ts";

Deno.test("TestIsArtifactValid", () => {
  assert.equal(isValidArtifactShortHand("base"), true);
  assert.equal(isValidArtifactShortHand("AWS"), true);
  assert.equal(isValidArtifactShortHand("finalize"), true);
  assert.equal(isValidArtifactShortHand("mandrake+root"), false);
  // fixed: every part must be valid (Gangplank accepted if any part was)
  assert.equal(isValidArtifactShortHand("base+root"), false);
  assert.equal(isValidArtifactShortHand("base+qemu+metal"), true);
  assert.equal(isValidArtifactShortHand("base+"), false);
});

Deno.test("TestCanArtifact", () => {
  assert.equal(canArtifact("aws"), true);
  assert.equal(canArtifact("darkCloud"), false);
  assert.equal(canArtifact("extensions"), true);
  assert.equal(canArtifact("AWS"), false); // case-sensitive like cosa
});

Deno.test("TestBuildCommands: Gangplank's exact strings", () => {
  const plain = { delay_meta_merge: false };
  const delay = { delay_meta_merge: true };
  assert.equal(buildArtifactCommand("base", plain), "cosa fetch; cosa build ;");
  assert.equal(buildArtifactCommand("ostree", plain), "cosa fetch; cosa build ostree;");
  assert.equal(buildArtifactCommand("qemu", plain), "cosa fetch; cosa build qemu;");
  assert.equal(buildArtifactCommand("base", delay), "cosa fetch; cosa build  --delay-meta-merge;");
  assert.equal(
    buildArtifactCommand("ostree", delay),
    "cosa fetch; cosa build ostree --delay-meta-merge;",
  );
  assert.equal(
    buildArtifactCommand("qemu", delay),
    "cosa fetch; cosa build qemu --delay-meta-merge;",
  );
  assert.equal(buildArtifactCommand("finalize", delay), "cosa meta --finalize;");
  assert.equal(buildArtifactCommand("live", plain), "cosa buildextend-live");
  assert.equal(buildArtifactCommand("metal", plain), "cosa buildextend-metal");
  assert.equal(buildArtifactCommand("aws", delay), "cosa buildextend-aws");
  assert.equal(buildArtifactCommand("qemu-secex", plain), "cosa buildextend-secex");
  assert.equal(buildArtifactCommand("live-iso", plain), "cosa buildextend-live");
  assert.throws(() => buildArtifactCommand("darkCloud", plain), ShorthandError);
  assert.throws(() => buildArtifactCommand("kernel", plain), ShorthandError);
});

Deno.test("produced artifacts", () => {
  assert.deepEqual(producedArtifacts("base"), ["ostree", "qemu"]);
  assert.deepEqual(producedArtifacts("finalize"), []);
  assert.deepEqual(producedArtifacts("live").sort(), [
    "live-initramfs",
    "live-iso",
    "live-kernel",
    "live-rootfs",
  ]);
  assert.deepEqual(producedArtifacts("metal"), ["metal"]);
});

Deno.test("kola table", () => {
  assert.equal(Object.keys(KOLA_TESTS).length, 8);
  assert.deepEqual(KOLA_TESTS.basicBios.postCommands, ["cosa kola run --qemu-nvme=true basic"]);
  assert.deepEqual(KOLA_TESTS.metal4k.requireArtifacts, ["live-iso"]);
  assert.equal(KOLA_TESTS.long.requireArtifacts.length, 0);
});

const clouds: JobSpec = parseJobSpec(
  `clouds_cfgs:
  aws: {enabled: true, ami_path: amis, geo: cn, regions: [us-east-1, x], grant_user: [a, b], grant_user_snapshot: [c]}
  aws-cn: {enabled: true, ami_path: cn-amis}
  azure: {enabled: true, resource_group: rg, storage_account: sa, storage_container: sc, force: true}
  gcp: {enabled: true, bucket: gb, project: gp, public: true, create_image: true, family: fam, license: [l1, l2], description: desc}
  aliyun: {enabled: false, bucket: ab}
`,
  {},
).spec;

Deno.test("publish commands per cloud; nil config is a clear error", () => {
  assert.equal(
    publishCommand("aws", clouds, "41.1"),
    "AWS_CONFIG_FILE=$AWS_CN_CONFIG_FILE coreos-assembler buildextend-aws --upload --build=41.1 " +
      "--bucket=s3://amis --region=us-east-1 --grant-user a,b --grant-user-snapshot c",
  );
  assert.equal(
    publishCommand("aws-cn", clouds, "41.1"),
    "coreos-assembler buildextend-aws --upload --build=41.1 --bucket=s3://cn-amis",
  );
  assert.equal(
    publishCommand("azure", clouds, "41.1"),
    "coreos-assembler buildextend-azure --upload --build 41.1 --auth $AZURE_CONFIG --container sc " +
      "--profile $AZURE_PROFILE --resource-group rg --storage-account sa --force",
  );
  assert.equal(
    publishCommand("gcp", clouds, "41.1"),
    "coreos-assembler buildextend-gcp --upload --build 41.1 --project gp --bucket gs://gb " +
      "--json $GCP_IMAGE_UPLOAD_CONFIG --public --create-image=true --family fam --license l1 " +
      "--license l2 --description desc",
  );
  assert.equal(publishCommand("aliyun", clouds, "41.1"), undefined); // disabled
  assert.throws(() => publishCommand("aws", defaultJobSpec(), "1"), CloudConfigError);
  assert.throws(() => publishCommand("aws", clouds, ""), CloudConfigError);
  assert.throws(() => publishCommand("metal", clouds, "1"), CloudConfigError);
  const pub = parseJobSpec("clouds_cfgs:\n  aliyun: {enabled: true, public: true}\n", {}).spec;
  assert.throws(() => publishCommand("aliyun", pub, "1"), CloudConfigError);
});

Deno.test("stageCommands: build artifacts, commands, kola and publish, un-rendered", () => {
  const spec: JobSpec = { ...clouds, delay_meta_merge: true };
  const c = stageCommands({
    id: "s",
    prep_commands: ["p1", "p2"],
    build_artifacts: ["base", "metal"],
    commands: ["echo {{.JobSpec.Job.BuildName}}"],
    post_commands: ["q"],
    kola_tests: ["basicbios"],
    publish_artifacts: ["gcp", "aliyun"],
  }, spec);
  assert.deepEqual(c.prep, ["p1", "p2"]);
  assert.deepEqual(c.main, [
    "cosa fetch; cosa build  --delay-meta-merge;",
    "cosa buildextend-metal",
    "echo {{.JobSpec.Job.BuildName}}",
  ]);
  assert.equal(c.post.length, 3);
  assert.equal(c.post[0], "q");
  assert.equal(c.post[1], "cosa kola run --qemu-nvme=true basic");
  assert.match(c.post[2], /--build \{\{\.Meta\.BuildID\}\}/);
  assert.match(
    renderTemplate(c.post[2], { JobSpec: spec, Meta: { buildid: "42.0" } }),
    /--build 42\.0 --project gp/,
  );
  assert.throws(() => stageCommands({ id: "x", kola_tests: ["nope"] }, spec), ShorthandError);
  assert.throws(
    () => stageCommands({ id: "x", publish_artifacts: ["aws"] }, defaultJobSpec()),
    CloudConfigError,
  );
});

Deno.test("publish values containing {{ are not interpreted as templates", () => {
  const spec = parseJobSpec("clouds_cfgs:\n  gcp: {enabled: true, project: 'a{{b'}\n", {}).spec;
  const post = stageCommands({ id: "x", publish_artifacts: ["gcp"] }, spec).post[0];
  assert.match(
    renderTemplate(post, { JobSpec: spec, Meta: { buildid: "7" } }),
    /--build 7 --project a\{\{b /,
  );
});
