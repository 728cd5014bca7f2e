/**
 * Build-artifact shorthands, kola test definitions and cloud publish commands: how a stage's
 * declarative fields become the shell commands a worker runs.
 *
 * @module
 */
import { CloudConfigError, ShorthandError } from "./errors.ts";
import type { AliyunCfg, AwsCfg, AzureCfg, GcpCfg, JobSpec, Stage } from "./types.ts";

/**
 * Artifact names cosa's `CanArtifact` accepts (the `images` keys of cosa's schema at the
 * commit Gangplank last built against, plus `extensions`). Case-sensitive.
 */
export const BUILDABLE_ARTIFACTS: readonly string[] = [
  "aliyun",
  "aws",
  "azure",
  "azurestack",
  "dasd",
  "digitalocean",
  "exoscale",
  "gcp",
  "ibmcloud",
  "initramfs",
  "iso",
  "kernel",
  "kubevirt",
  "live-initramfs",
  "live-iso",
  "live-kernel",
  "live-rootfs",
  "metal",
  "metal4k",
  "nutanix",
  "openstack",
  "ostree",
  "powervs",
  "qemu",
  "qemu-secex",
  "virtualbox",
  "vmware",
  "vultr",
  "extensions",
];

/**
 * Every artifact name a `meta.json` may list (used to validate `require_artifacts` and
 * `request_artifacts`): the buildable ones plus newer cosa `images` keys.
 */
export const META_ARTIFACTS: readonly string[] = [
  ...BUILDABLE_ARTIFACTS,
  "applehv",
  "extensions-container",
  "hetzner",
  "hyperv",
  "ignition-gpg-key",
  "legacy-oscontainer",
  "nvidiabluefield",
  "oci-manifest",
  "oraclecloud",
  "proxmoxve",
];

/** Shorthands that are not artifacts themselves. */
export const PSEUDO_SHORTHANDS: readonly string[] = ["base", "finalize", "live"];

/** cosa's `CanArtifact`: is `name` (case-sensitive) an artifact cosa knows how to describe? */
export function canArtifact(name: string): boolean {
  return BUILDABLE_ARTIFACTS.includes(name);
}

/**
 * Is `a` a valid `-A` shorthand? Case-insensitive; `a+b` is valid when **every** part is
 * (Gangplank accepted it when any part was).
 */
export function isValidArtifactShortHand(a: string): boolean {
  const parts = a.toLowerCase().split("+");
  return parts.every((p) => p !== "" && (PSEUDO_SHORTHANDS.includes(p) || canArtifact(p)));
}

/** The shorthand names `-A` accepts, in a stable order. */
export function artifactShortHandNames(): string[] {
  const live = (n: string) => n === "iso" || n.startsWith("live-");
  const rest = BUILDABLE_ARTIFACTS.filter(
    (n) => !live(n) && n !== "ostree" && n !== "kernel" && n !== "initramfs",
  ).sort();
  return [...PSEUDO_SHORTHANDS, ...rest];
}

/**
 * The command a `build_artifacts` entry expands to (§3.7). The strings are Gangplank's,
 * including `cosa build ;` for base and its double space with `--delay-meta-merge`.
 * Differences: `qemu-secex` runs `cosa buildextend-secex` (the real command) and the `live-*`
 * artifacts run `cosa buildextend-live`, which produces them; `iso`, `kernel` and `initramfs`
 * are rejected because no cosa command builds them on their own.
 *
 * @throws {ShorthandError} for names that are not buildable.
 * @example buildArtifactCommand("qemu", spec) // "cosa fetch; cosa build qemu;"
 */
export function buildArtifactCommand(
  name: string,
  spec: Pick<JobSpec, "delay_meta_merge">,
): string {
  const lower = name.toLowerCase();
  const delay = spec.delay_meta_merge ? " --delay-meta-merge" : "";
  switch (lower) {
    case "base":
      return `cosa fetch; cosa build ${delay};`;
    case "ostree":
    case "qemu":
      return `cosa fetch; cosa build ${lower}${delay};`;
    case "finalize":
      return "cosa meta --finalize;";
    case "live":
      return "cosa buildextend-live";
  }
  if (!canArtifact(name)) {
    throw new ShorthandError(`${name} is not a known buildable artifact`, name);
  }
  if (name === "qemu-secex") return "cosa buildextend-secex";
  if (name.startsWith("live-")) return "cosa buildextend-live";
  if (name === "iso" || name === "kernel" || name === "initramfs") {
    throw new ShorthandError(
      `${name} cannot be built on its own (no cosa buildextend-${name}); use live`,
      name,
    );
  }
  return `cosa buildextend-${name}`;
}

/** The `meta.json` artifact names a build shorthand produces. */
export function producedArtifacts(shorthand: string): string[] {
  const s = shorthand.toLowerCase();
  if (s === "base") return ["ostree", "qemu"];
  if (s === "finalize") return [];
  if (s === "live" || s.startsWith("live-")) {
    return ["live-iso", "live-kernel", "live-initramfs", "live-rootfs"];
  }
  return canArtifact(s) ? [s] : [];
}

/** A kola test shorthand (`--kolaTest`, `kola_tests`). */
export interface KolaTest {
  /** Stage id Gangplank gave the generated stage. */
  id: string;
  /** Appended to the stage's post script. */
  postCommands: string[];
  /** Artifacts the test needs. */
  requireArtifacts: string[];
  executionOrder: number;
}

/** Kola test definitions (`spec/kola.go`). */
export const KOLA_TESTS: Readonly<Record<string, KolaTest>> = {
  basicBios: {
    id: "Kola Basic BIOS Test",
    postCommands: ["cosa kola run --qemu-nvme=true basic"],
    requireArtifacts: ["qemu"],
    executionOrder: 2,
  },
  basicQemu: {
    id: "Kola Basic Qemu",
    postCommands: ["cosa kola --basic-qemu-scenarios"],
    requireArtifacts: ["qemu"],
    executionOrder: 2,
  },
  basicUEFI: {
    id: "Basic UEFI Test",
    postCommands: ["cosa kola run --qemu-firmware=uefi basic"],
    requireArtifacts: ["qemu"],
    executionOrder: 2,
  },
  external: {
    id: "External Kola Test",
    postCommands: ["cosa kola run 'ext.*'"],
    requireArtifacts: ["qemu"],
    executionOrder: 2,
  },
  long: {
    id: "Kola Long Tests",
    postCommands: ["cosa kola run --parallel 3"],
    requireArtifacts: [],
    executionOrder: 2,
  },
  upgrade: {
    id: "Kola Upgrade Test",
    postCommands: ["kola run-upgrade --output-dir tmp/kola-upgrade"],
    requireArtifacts: [],
    executionOrder: 2,
  },
  iso: {
    id: "Kola ISO Testing",
    postCommands: ["kola testiso -S"],
    requireArtifacts: ["live-iso"],
    executionOrder: 4,
  },
  metal4k: {
    id: "Kola ISO Testing 4K Disks",
    postCommands: [
      "kola testiso -S --qemu-native-4k --scenarios iso-install --output-dir tmp/kola-metal4k",
    ],
    requireArtifacts: ["live-iso"],
    executionOrder: 4,
  },
};

/** Looks a kola test up by name, case-insensitively. Returns the canonical key. */
export function kolaTestName(name: string): string | undefined {
  return Object.keys(KOLA_TESTS).find((k) => k.toLowerCase() === name.toLowerCase());
}

/** Clouds `publish_artifacts` accepts. Unlike Gangplank, `aws-cn` can be published. */
export const PUBLISH_CLOUDS: readonly string[] = ["aliyun", "aws", "aws-cn", "azure", "gcp"];

/**
 * The command publishing `cloud` for build `buildId` (§3.7), or `undefined` when that cloud is
 * configured but disabled.
 *
 * @throws {CloudConfigError} when the cloud is unknown or not configured in `clouds_cfgs`,
 *   `buildId` is empty, or the config is unusable (aliyun `public: true`).
 */
export function publishCommand(
  cloud: string,
  spec: Pick<JobSpec, "clouds_cfgs">,
  buildId: string,
): string | undefined {
  const name = cloud.toLowerCase();
  if (!PUBLISH_CLOUDS.includes(name)) {
    throw new CloudConfigError(
      `cannot publish ${cloud}: publishable clouds are ${PUBLISH_CLOUDS.join(", ")}`,
      cloud,
    );
  }
  const cfg = spec.clouds_cfgs?.[name as keyof NonNullable<JobSpec["clouds_cfgs"]>];
  if (!cfg) {
    throw new CloudConfigError(
      `cannot publish ${cloud}: clouds_cfgs.${name} is not configured`,
      cloud,
    );
  }
  if (!buildId) {
    throw new CloudConfigError(`cannot publish ${cloud}: the build ID is empty`, cloud);
  }
  switch (name) {
    case "aliyun":
      return aliyunCommand(cfg as AliyunCfg, buildId);
    case "aws":
    case "aws-cn":
      return awsCommand(cfg as AwsCfg, buildId);
    case "azure":
      return azureCommand(cfg as AzureCfg, buildId);
    default:
      return gcpCommand(cfg as GcpCfg, buildId);
  }
}

function aliyunCommand(c: AliyunCfg, id: string): string | undefined {
  if (!c.enabled) return undefined;
  if (c.public) {
    throw new CloudConfigError("cannot publish aliyun: public images are not supported", "aliyun");
  }
  let cmd = `coreos-assembler buildextend-aliyun --upload --build=${id} --bucket=s3://${
    c.bucket ?? ""
  }`;
  if (c.regions?.length) cmd += ` --region=${c.regions[0]}`;
  return cmd;
}

function awsCommand(c: AwsCfg, id: string): string | undefined {
  if (!c.enabled) return undefined;
  const env = c.geo ? `AWS_CONFIG_FILE=$AWS_${c.geo.toUpperCase()}_CONFIG_FILE ` : "";
  let cmd = `${env}coreos-assembler buildextend-aws --upload --build=${id} --bucket=s3://${
    c.ami_path ?? ""
  }`;
  if (c.regions?.length) cmd += ` --region=${c.regions[0]}`;
  if (c.grant_user?.length) cmd += ` --grant-user ${c.grant_user.join(",")}`;
  if (c.grant_user_snapshot?.length) {
    cmd += ` --grant-user-snapshot ${c.grant_user_snapshot.join(",")}`;
  }
  return cmd;
}

function azureCommand(c: AzureCfg, id: string): string | undefined {
  if (!c.enabled) return undefined;
  let cmd = `coreos-assembler buildextend-azure --upload --build ${id} --auth $AZURE_CONFIG` +
    ` --container ${c.storage_container ?? ""} --profile $AZURE_PROFILE` +
    ` --resource-group ${c.resource_group ?? ""} --storage-account ${c.storage_account ?? ""}`;
  if (c.force) cmd += " --force";
  return cmd;
}

function gcpCommand(c: GcpCfg, id: string): string | undefined {
  if (!c.enabled) return undefined;
  let cmd = `coreos-assembler buildextend-gcp --upload --build ${id} --project ${
    c.project ?? ""
  } --bucket gs://${c.bucket ?? ""} --json $GCP_IMAGE_UPLOAD_CONFIG`;
  if (c.public) cmd += " --public";
  if (c.create_image) cmd += " --create-image=true";
  if (c.family) cmd += ` --family ${c.family}`;
  for (const l of c.license ?? []) cmd += ` --license ${l}`;
  if (c.description) cmd += ` --description ${c.description}`;
  return cmd;
}

/** Makes literal text safe to embed in a template (`{{` becomes `{{"{{"}}`). */
export function escapeTemplateText(s: string): string {
  return s.replaceAll("{{", '{{"{{"}}');
}

/** The commands of one stage, before template rendering. */
export interface StageCommands {
  /** `prep_commands`: one script, run first. */
  prep: string[];
  /** One script per entry: the `build_artifacts` commands, then `commands`. */
  main: string[];
  /** One script, run last: `post_commands`, kola test commands, publish commands. */
  post: string[];
}

/**
 * A stage's commands, un-rendered (§3.6). Publish commands reference the build ID as
 * `{{.Meta.BuildID}}`, so they are complete once rendered against the worker's `meta.json`.
 *
 * @throws {ShorthandError} for an unknown build shorthand or kola test.
 * @throws {CloudConfigError} for a publish target without a usable config.
 */
export function stageCommands(stage: Stage, spec: JobSpec): StageCommands {
  const main = (stage.build_artifacts ?? []).map((a) => buildArtifactCommand(a, spec));
  main.push(...(stage.commands ?? []));
  const post = [...(stage.post_commands ?? [])];
  for (const t of stage.kola_tests ?? []) {
    const key = kolaTestName(t);
    if (!key) throw new ShorthandError(`kola test ${t} is an invalid kola name`, t);
    post.push(...KOLA_TESTS[key].postCommands);
  }
  for (const cloud of stage.publish_artifacts ?? []) {
    const cmd = publishCommand(cloud, escapedClouds(spec), "{{.Meta.BuildID}}");
    if (cmd !== undefined) post.push(cmd);
  }
  return { prep: [...(stage.prep_commands ?? [])], main, post };
}

/** clouds_cfgs with every string escaped for template embedding. */
function escapedClouds(spec: JobSpec): Pick<JobSpec, "clouds_cfgs"> {
  const esc = (v: unknown): unknown => {
    if (typeof v === "string") return escapeTemplateText(v);
    if (Array.isArray(v)) return v.map(esc);
    if (v && typeof v === "object") {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, esc(x)]));
    }
    return v;
  };
  return { clouds_cfgs: esc(spec.clouds_cfgs) as JobSpec["clouds_cfgs"] };
}
