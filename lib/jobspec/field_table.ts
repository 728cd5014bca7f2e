/**
 * The JobSpec's field table: every key with its YAML/JSON name, Gangplank's Go field name and
 * its type. Parsing (type checks, unknown keys), templates (`.JobSpec.<GoName>`) and YAML
 * output all read it, so a new key is one line here (and its field in `types.ts`).
 *
 * @module
 */

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
