/**
 * The JobSpec model. Property names are the YAML keys Gangplank users write (snake_case, plus
 * `copy-build` and `aws-cn`); the same shape is the JSON wire form.
 *
 * @module
 */

/** `job:` — `strict` changes behaviour; the rest is available to templates. */
export interface Job {
  build_name?: string;
  is_production?: boolean;
  /** Disables the implied `COSA_CMDS` / `*.cosa.sh` stages. Generated specs set it. */
  strict?: boolean;
  version_suffix?: string;
  /** Parsed for compatibility; not used. */
  force_arch?: string;
  /** Parsed for compatibility (Gangplank always emitted it as ""); not used. */
  miniocfgfile?: string;
}

/** A yum repo written to `src/config/<name or sha256>.repo` on workers. */
export interface Repo {
  name?: string;
  /** Fetched over HTTP(S) by the worker. */
  url?: string;
  /** Written verbatim. */
  inline?: string;
}

/** `recipe:` — what `cosa init` clones. */
export interface Recipe {
  git_ref?: string;
  git_url?: string;
  git_commit?: string;
  repos?: Repo[];
}

/** `minio:` — where build objects live in the object store. */
export interface Minio {
  bucket?: string;
  key_prefix?: string;
  configfile?: string;
  sshforward?: string;
  sshuser?: string;
  sshkey?: string;
  sshport?: number;
}

/** `clouds_cfgs.aliyun` */
export interface AliyunCfg {
  bucket?: string;
  enabled?: boolean;
  public?: boolean;
  regions?: string[];
}

/** `clouds_cfgs.aws` and `clouds_cfgs.aws-cn` */
export interface AwsCfg {
  enabled?: boolean;
  ami_path?: string;
  geo?: string;
  grant_user?: string[];
  grant_user_snapshot?: string[];
  public?: boolean;
  regions?: string[];
}

/** `clouds_cfgs.azure` */
export interface AzureCfg {
  enabled?: boolean;
  resource_group?: string;
  storage_account?: string;
  storage_container?: string;
  storage_location?: string;
  force?: boolean;
}

/** `clouds_cfgs.gcp` */
export interface GcpCfg {
  bucket?: string;
  create_image?: boolean;
  deprecated?: boolean;
  description?: string;
  enabled?: boolean;
  family?: string;
  license?: string[];
  log_level?: string;
  project?: string;
  public?: boolean;
}

/** `clouds_cfgs:` — used by `publish_artifacts` and templates. */
export interface CloudsCfgs {
  aliyun?: AliyunCfg;
  aws?: AwsCfg;
  "aws-cn"?: AwsCfg;
  azure?: AzureCfg;
  gcp?: GcpCfg;
}

/** `publish_oscontainer.registries[]` */
export interface Registry {
  url: string;
  /** Default true. */
  tls_verify?: boolean;
  /** `inline` (secret is the auth JSON), `cluster` (secret is a secret name) or `token`. */
  secret_type?: "inline" | "cluster" | "token";
  secret?: string;
}

/** `publish_oscontainer:` */
export interface PublishOscontainer {
  /** Default true. */
  buildstrategy_tls_verify?: boolean;
  registries?: Registry[];
}

/** `archives:` — templating only. */
export interface Archives {
  brew?: { enabled?: boolean; principle?: string; profile?: string; tag?: string };
  s3?: { acl?: string; bucket?: string; path?: string };
}

/** A stage override: an RPM or a tarball fetched by the coordinator and sent to the worker. */
export interface Override {
  /** `file://…`, `http://…` or `https://…` */
  uri: string;
  rpm?: boolean;
  tarball?: boolean;
  /** `all` (default), `rpms`, `rpm` or `rootfs`. */
  tarball_type?: "all" | "rpms" | "rpm" | "rootfs";
}

/** One stage: runs in its own worker. */
export interface Stage {
  /** Unique, non-empty. */
  id: string;
  description?: string;
  /** Run the main commands in parallel. */
  concurrent?: boolean;
  /** Parsed for compatibility; not implemented (as in Gangplank). */
  direct_exec?: boolean;
  /** Parsed for compatibility; not implemented (as in Gangplank). */
  not_blocking?: boolean;
  /** Meta artifact names that must exist before the stage starts. */
  require_artifacts?: string[];
  /** Meta artifact names fetched when present. */
  request_artifacts?: string[];
  /** Build shorthands (`base`, `qemu`, `metal`, `live`, `finalize`, …), run before `commands`. */
  build_artifacts?: string[];
  commands?: string[];
  /** Cloud names whose publish commands are appended to post. */
  publish_artifacts?: string[];
  prep_commands?: string[];
  post_commands?: string[];
  post_always?: boolean;
  /** Execution group; 0 or absent counts as 2. */
  execution_order?: number;
  return_cache?: boolean;
  require_cache?: boolean;
  request_cache?: boolean;
  return_cache_repo?: boolean;
  require_cache_repo?: boolean;
  request_cache_repo?: boolean;
  /** Paths relative to /srv uploaded as `[prefix/]cache/<path>`. */
  return_files?: string[];
  /** Kola test shorthands appended to post. */
  kola_tests?: string[];
  overrides?: Override[];
}

/** A whole JobSpec. */
export interface JobSpec {
  archives?: Archives;
  clouds_cfgs?: CloudsCfgs;
  job: Job;
  recipe: Recipe;
  /** Templating only. */
  spec?: { git_ref?: string; git_url?: string };
  minio: Minio;
  publish_oscontainer?: PublishOscontainer;
  stages: Stage[];
  delay_meta_merge?: boolean;
  /** Extra build whose metadata is sent to every worker. */
  "copy-build"?: string;
}

// ---------------------------------------------------------------------------------------------
// Field descriptors: one table drives validation (YAML key, type) and templating (Go name).

/** Type of a described field. */
export type FieldType =
  | { kind: "string"; oneOf?: readonly string[]; caseInsensitive?: boolean }
  | { kind: "bool" }
  | { kind: "int"; min?: number }
  | { kind: "number" }
  | { kind: "list"; of: FieldType }
  | { kind: "object"; name: string; fields: readonly FieldDesc[] }
  | { kind: "any" };

/** One field: YAML/JSON key, Go field name (used by templates) and type. */
export interface FieldDesc {
  key: string;
  go: string;
  type: FieldType;
  required?: boolean;
}

const str: FieldType = { kind: "string" };
const bool: FieldType = { kind: "bool" };
const strList: FieldType = { kind: "list", of: str };
const f = (key: string, go: string, type: FieldType, required = false): FieldDesc => ({
  key,
  go,
  type,
  required,
});
const obj = (name: string, fields: FieldDesc[]): FieldType => ({ kind: "object", name, fields });

const AWS_FIELDS = [
  f("enabled", "Enabled", bool),
  f("ami_path", "AmiPath", str),
  f("geo", "Geo", str),
  f("grant_user", "GrantUser", strList),
  f("grant_user_snapshot", "GrantUserSnapshot", strList),
  f("public", "Public", bool),
  f("regions", "Regions", strList),
];

/** Descriptor of a stage (Go type `Stage`). */
export const STAGE_TYPE: FieldType = obj("Stage", [
  f("id", "ID", str),
  f("description", "Description", str),
  f("concurrent", "ConcurrentExecution", bool),
  f("direct_exec", "DirectExec", bool),
  f("not_blocking", "NotBlocking", bool),
  f("require_artifacts", "RequireArtifacts", strList),
  f("request_artifacts", "RequestArtifacts", strList),
  f("build_artifacts", "BuildArtifacts", strList),
  f("commands", "Commands", strList),
  f("publish_artifacts", "PublishArtifacts", strList),
  f("prep_commands", "PrepCommands", strList),
  f("post_commands", "PostCommands", strList),
  f("post_always", "PostAlways", bool),
  f("execution_order", "ExecutionOrder", { kind: "int", min: 0 }),
  f("return_cache", "ReturnCache", bool),
  f("require_cache", "RequireCache", bool),
  f("request_cache", "RequestCache", bool),
  f("return_cache_repo", "ReturnCacheRepo", bool),
  f("require_cache_repo", "RequireCacheRepo", bool),
  f("request_cache_repo", "RequestCacheRepo", bool),
  f("return_files", "ReturnFiles", strList),
  f("kola_tests", "KolaTests", strList),
  f(
    "overrides",
    "Overrides",
    {
      kind: "list",
      of: obj("Override", [
        f("uri", "URI", str, true),
        f("rpm", "Rpm", bool),
        f("tarball", "Tarball", bool),
        f("tarball_type", "TarballType", {
          kind: "string",
          oneOf: ["all", "rpms", "rpm", "rootfs"],
        }),
      ]),
    },
  ),
]);

/** Descriptor of the whole JobSpec (Go type `JobSpec`), in Gangplank's field order. */
export const JOBSPEC_TYPE: FieldType = obj("JobSpec", [
  f(
    "archives",
    "Archives",
    obj("Archives", [
      f(
        "brew",
        "Brew",
        obj("Brew", [
          f("enabled", "Enabled", bool),
          f("principle", "Principle", str),
          f("profile", "Profile", str),
          f("tag", "Tag", str),
        ]),
      ),
      f(
        "s3",
        "S3",
        obj("S3", [f("acl", "ACL", str), f("bucket", "Bucket", str), f("path", "Path", str)]),
      ),
    ]),
  ),
  f(
    "clouds_cfgs",
    "CloudsCfgs",
    obj("CloudsCfgs", [
      f(
        "aliyun",
        "Aliyun",
        obj("Aliyun", [
          f("bucket", "Bucket", str),
          f("enabled", "Enabled", bool),
          f("public", "Public", bool),
          f("regions", "Regions", strList),
        ]),
      ),
      f("aws", "Aws", obj("Aws", AWS_FIELDS)),
      f("aws-cn", "AwsCn", obj("Aws", AWS_FIELDS)),
      f(
        "azure",
        "Azure",
        obj("Azure", [
          f("enabled", "Enabled", bool),
          f("resource_group", "ResourceGroup", str),
          f("storage_account", "StorageAccount", str),
          f("storage_container", "StorageContainer", str),
          f("storage_location", "StorageLocation", str),
          f("force", "Force", bool),
        ]),
      ),
      f(
        "gcp",
        "Gcp",
        obj("Gcp", [
          f("bucket", "Bucket", str),
          f("create_image", "CreateImage", bool),
          f("deprecated", "Deprecated", bool),
          f("description", "Description", str),
          f("enabled", "Enabled", bool),
          f("family", "Family", str),
          f("license", "License", strList),
          f("log_level", "LogLevel", str),
          f("project", "Project", str),
          f("public", "Public", bool),
        ]),
      ),
    ]),
  ),
  f(
    "job",
    "Job",
    obj("Job", [
      f("build_name", "BuildName", str),
      f("is_production", "IsProduction", bool),
      f("strict", "StrictMode", bool),
      f("version_suffix", "VersionSuffix", str),
      f("force_arch", "ForceArch", str),
      f("miniocfgfile", "MinioCfgFile", str),
    ]),
  ),
  f(
    "recipe",
    "Recipe",
    obj("Recipe", [
      f("git_ref", "GitRef", str),
      f("git_url", "GitURL", str),
      f("git_commit", "GitCommit", str),
      f(
        "repos",
        "Repos",
        {
          kind: "list",
          of: obj("Repo", [
            f("name", "Name", str),
            f("url", "URL", str),
            f("inline", "Inline", str),
          ]),
        },
      ),
    ]),
  ),
  f("spec", "Spec", obj("Spec", [f("git_ref", "GitRef", str), f("git_url", "GitURL", str)])),
  f(
    "minio",
    "Minio",
    obj("Minio", [
      f("bucket", "Bucket", str),
      f("key_prefix", "KeyPrefix", str),
      f("configfile", "ConfigFile", str),
      f("sshforward", "SSHForward", str),
      f("sshuser", "SSHUser", str),
      f("sshkey", "SSHKey", str),
      f("sshport", "SSHPort", { kind: "int", min: 0 }),
    ]),
  ),
  f(
    "publish_oscontainer",
    "PublishOscontainer",
    obj("PublishOscontainer", [
      f("buildstrategy_tls_verify", "BuildStrategyTLSVerify", bool),
      f(
        "registries",
        "Registries",
        {
          kind: "list",
          of: obj("Registry", [
            f("url", "URL", str, true),
            f("tls_verify", "TLSVerify", bool),
            f("secret_type", "SecretType", {
              kind: "string",
              oneOf: ["inline", "cluster", "token"],
              caseInsensitive: true,
            }),
            f("secret", "Secret", str),
          ]),
        },
      ),
    ]),
  ),
  f("stages", "Stages", { kind: "list", of: STAGE_TYPE }),
  f("delay_meta_merge", "DelayedMetaMerge", bool),
  f("copy-build", "CopyBuild", str),
]);

/** Gangplank's CLI defaults (§2.2) for Fedora CoreOS. */
export const DEFAULT_GIT_REF = "testing-devel";
/** Default recipe repository. */
export const DEFAULT_GIT_URL = "https://github.com/coreos/fedora-coreos-config";
/** Default bucket of build objects. */
export const DEFAULT_BUCKET = "builder";

/**
 * A JobSpec holding Gangplank's CLI defaults: recipe `testing-devel` of fedora-coreos-config,
 * bucket `builder`, no stages. Returns a fresh object each call.
 */
export function defaultJobSpec(): JobSpec {
  return {
    job: {},
    recipe: { git_ref: DEFAULT_GIT_REF, git_url: DEFAULT_GIT_URL },
    minio: { bucket: DEFAULT_BUCKET },
    stages: [],
  };
}

/** Effective execution group of a stage: `execution_order`, with 0/absent counting as 2. */
export function effectiveOrder(stage: Stage): number {
  return stage.execution_order ? stage.execution_order : 2;
}
