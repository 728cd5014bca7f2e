/**
 * The JobSpec model. Property names are the YAML keys Gangplank users write (snake_case, plus
 * `copy-build` and `aws-cn`); the same shape is the JSON wire form.
 *
 * @module
 */

/** `job:` — `strict` changes behaviour; the rest is available to templates. */
export interface Job {
  /** Build name, for templates (`.JobSpec.Job.BuildName`). */
  build_name?: string;
  /** Production build flag, for templates. */
  is_production?: boolean;
  /** Disables the implied `COSA_CMDS` / `*.cosa.sh` stages. Generated specs set it. */
  strict?: boolean;
  /** Version suffix, for templates. */
  version_suffix?: string;
  /** Parsed for compatibility; not used. */
  force_arch?: string;
  /** Parsed for compatibility (Gangplank always emitted it as ""); not used. */
  miniocfgfile?: string;
}

/** A yum repo written to `src/config/<name or sha256>.repo` on workers. */
export interface Repo {
  /** File name of the `.repo` file (`<name>.repo`; default from the URL or a hash). */
  name?: string;
  /** Fetched over HTTP(S) by the worker. */
  url?: string;
  /** Written verbatim. */
  inline?: string;
}

/** `recipe:` — what `cosa init` clones. */
export interface Recipe {
  /** Branch or tag of the config repo (`cosa init --branch`). */
  git_ref?: string;
  /** URL of the config repo: `cosa init` runs when it is set and src/config is absent. */
  git_url?: string;
  /** Commit of the config repo to check out (`cosa init --commit`). */
  git_commit?: string;
  /** Extra `.repo` files written into src/config before the stages run. */
  repos?: Repo[];
}

/** `minio:` — where build objects live in the object store. */
export interface Minio {
  /** Bucket of the job (default `builder`). */
  bucket?: string;
  /** Prefix of every object key of the job (no leading/trailing slash). */
  key_prefix?: string;
  /** A minio config JSON naming an external S3 endpoint instead of the relay. */
  configfile?: string;
  /** Host whose SSH port-forward carries the relay to remote workers. */
  sshforward?: string;
  /** User for {@link Minio.sshforward}. */
  sshuser?: string;
  /** Private key file for {@link Minio.sshforward}. */
  sshkey?: string;
  /** Port for {@link Minio.sshforward} (default 22). */
  sshport?: number;
}

/** `clouds_cfgs.aliyun` */
export interface AliyunCfg {
  /** OSS bucket for uploads. */
  bucket?: string;
  /** Whether the cloud is configured (publish stages need it). */
  enabled?: boolean;
  /** Make images public (refused: Aliyun images cannot be made public here). */
  public?: boolean;
  /** Regions to replicate to. */
  regions?: string[];
}

/** `clouds_cfgs.aws` and `clouds_cfgs.aws-cn` */
export interface AwsCfg {
  /** Whether the cloud is configured (publish stages need it). */
  enabled?: boolean;
  /** S3 path the AMI is uploaded through. */
  ami_path?: string;
  /** Partition (`cn` for AWS China). */
  geo?: string;
  /** Accounts granted launch permission. */
  grant_user?: string[];
  /** Accounts granted snapshot access. */
  grant_user_snapshot?: string[];
  /** Make the AMI public. */
  public?: boolean;
  /** Regions to replicate to. */
  regions?: string[];
}

/** `clouds_cfgs.azure` */
export interface AzureCfg {
  /** Whether the cloud is configured (publish stages need it). */
  enabled?: boolean;
  /** Resource group of the image. */
  resource_group?: string;
  /** Storage account the image is uploaded to. */
  storage_account?: string;
  /** Storage container the image is uploaded to. */
  storage_container?: string;
  /** Location of the storage account. */
  storage_location?: string;
  /** Overwrite an existing image. */
  force?: boolean;
}

/** `clouds_cfgs.gcp` */
export interface GcpCfg {
  /** Storage bucket the image is uploaded to. */
  bucket?: string;
  /** Create an image from the upload. */
  create_image?: boolean;
  /** Mark the image deprecated. */
  deprecated?: boolean;
  /** Image description. */
  description?: string;
  /** Whether the cloud is configured (publish stages need it). */
  enabled?: boolean;
  /** Image family. */
  family?: string;
  /** Licenses attached to the image. */
  license?: string[];
  /** Log level of the upload tool. */
  log_level?: string;
  /** Project of the image. */
  project?: string;
  /** Make the image public. */
  public?: boolean;
}

/** `clouds_cfgs:` — used by `publish_artifacts` and templates. */
export interface CloudsCfgs {
  /** Alibaba Cloud. */
  aliyun?: AliyunCfg;
  /** Amazon Web Services. */
  aws?: AwsCfg;
  /** AWS China. */
  "aws-cn"?: AwsCfg;
  /** Microsoft Azure. */
  azure?: AzureCfg;
  /** Google Cloud. */
  gcp?: GcpCfg;
}

/** `publish_oscontainer.registries[]` */
export interface Registry {
  /** Image reference to push to (`registry/repo:tag`). */
  url: string;
  /** Default true. */
  tls_verify?: boolean;
  /** `inline` (secret is the auth JSON), `cluster` (secret is a secret name) or `token`. */
  secret_type?: "inline" | "cluster" | "token";
  /** The secret of {@link Registry.secret_type}: never logged, sent apart from the WorkSpec. */
  secret?: string;
}

/** `publish_oscontainer:` */
export interface PublishOscontainer {
  /** Default true. */
  buildstrategy_tls_verify?: boolean;
  /** Registries the oscontainer is pushed to after a stage builds a new ostree. */
  registries?: Registry[];
}

/** `archives:` — templating only. */
export interface Archives {
  /** Brew archive settings, for templates. */
  brew?: { enabled?: boolean; principle?: string; profile?: string; tag?: string };
  /** S3 archive settings, for templates. */
  s3?: { acl?: string; bucket?: string; path?: string };
}

/** A stage override: an RPM or a tarball fetched by the coordinator and sent to the worker. */
export interface Override {
  /** `file://…`, `http://…` or `https://…` */
  uri: string;
  /** The URI is an RPM. */
  rpm?: boolean;
  /** The URI is a tarball (see {@link Override.tarball_type}). */
  tarball?: boolean;
  /** `all` (default), `rpms`, `rpm` or `rootfs`. */
  tarball_type?: "all" | "rpms" | "rpm" | "rootfs";
}

/** One stage: runs in its own worker. */
export interface Stage {
  /** Unique, non-empty. */
  id: string;
  /** Free text, shown in the plan. */
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
  /** Shell commands run after the build shorthands (templates allowed). */
  commands?: string[];
  /** Cloud names whose publish commands are appended to post. */
  publish_artifacts?: string[];
  /** Commands run before the main ones, as one script. */
  prep_commands?: string[];
  /** Commands run after the main ones, as one script. */
  post_commands?: string[];
  /** Run the post commands after a failure too. */
  post_always?: boolean;
  /** Execution group; 0 or absent counts as 2. */
  execution_order?: number;
  /** Return `/srv/cache` as the cache tarball. */
  return_cache?: boolean;
  /** The cache tarball must exist before the stage starts. */
  require_cache?: boolean;
  /** Fetch the cache tarball when it exists. */
  request_cache?: boolean;
  /** Return `/srv/tmp/repo` as the repo cache tarball. */
  return_cache_repo?: boolean;
  /** The repo cache tarball must exist before the stage starts. */
  require_cache_repo?: boolean;
  /** Fetch the repo cache tarball when it exists. */
  request_cache_repo?: boolean;
  /** Paths relative to /srv uploaded as `[prefix/]cache/<path>`. */
  return_files?: string[];
  /** Kola test shorthands appended to post. */
  kola_tests?: string[];
  /** RPMs or tarballs put into `/srv/overrides` before the stage runs. */
  overrides?: Override[];
}

/** A whole JobSpec. */
export interface JobSpec {
  /** Archive settings (templates only). */
  archives?: Archives;
  /** Cloud settings used by the publish shorthands. */
  clouds_cfgs?: CloudsCfgs;
  /** Job settings. */
  job: Job;
  /** The config repo and extra repos. */
  recipe: Recipe;
  /** Templating only. */
  spec?: { git_ref?: string; git_url?: string };
  /** Where artifacts are kept: bucket, key prefix, external endpoint, SSH forward. */
  minio: Minio;
  /** Registries the oscontainer is pushed to. */
  publish_oscontainer?: PublishOscontainer;
  /** The stages, run by execution order. */
  stages: Stage[];
  /** Pass `--delay-meta-merge` to the build shorthands. */
  delay_meta_merge?: boolean;
  /** Extra build whose metadata is sent to every worker. */
  "copy-build"?: string;
}

// ---------------------------------------------------------------------------------------------
// Field descriptors: one table drives validation (YAML key, type) and templating (Go name).

export { type FieldDesc, type FieldType, JOBSPEC_TYPE, STAGE_TYPE } from "./field_table.ts";

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
