/**
 * The two mapping tables Gangplank users label their cluster objects for, as plain data:
 * secrets labelled `coreos-assembler.coreos.com/secret=<type>` (reference §7.3) and
 * secrets/config maps labelled `coreos-assembler.coreos.com/mount-ref=<type>` (§7.4).
 *
 * @module
 */

/** Label that marks a Secret whose data keys become worker env vars and files (§7.3). */
export const SECRET_LABEL = "coreos-assembler.coreos.com/secret";

/** Label that marks a Secret or ConfigMap to mount into every worker (§7.4). */
export const MOUNT_REF_LABEL = "coreos-assembler.coreos.com/mount-ref";

/** A data key exposed to the worker as an environment variable (via `secretKeyRef`). */
export interface EnvFromKey {
  /** Data key in the Secret. */
  key: string;
  /** Environment variable set in the worker. */
  env: string;
}

/**
 * Data keys written as files under `/srv/.<type>/<key>` (mode 0600), with an env var naming
 * the file path. When several alternative keys are listed, every present one is written and
 * the env var points at the first present one in list order.
 */
export interface FileFromKeys {
  keys: readonly string[];
  env: string;
}

/** One row of the §7.3 table. */
export interface SecretMapping {
  /** The label value (`aws`, `gcp`, ...). */
  type: string;
  envs: readonly EnvFromKey[];
  files: readonly FileFromKeys[];
}

/**
 * The §7.3 table. Differences from Gangplank: `aws_ca_bundle` is a file whose path goes in
 * `AWS_CA_BUNDLE` (Gangplank put the certificate content in the variable, §12.1.23), and
 * files are 0600 instead of 0555.
 */
export const SECRET_MAPPINGS: readonly SecretMapping[] = [
  { type: "aliyun", envs: [], files: [{ keys: ["config.json"], env: "ALIYUN_CONFIG_FILE" }] },
  {
    type: "aws",
    envs: [
      { key: "aws_access_key_id", env: "AWS_ACCESS_KEY_ID" },
      { key: "aws_secret_access_key", env: "AWS_SECRET_ACCESS_KEY" },
      { key: "aws_default_region", env: "AWS_DEFAULT_REGION" },
    ],
    files: [
      { keys: ["config"], env: "AWS_CONFIG_FILE" },
      { keys: ["aws_ca_bundle"], env: "AWS_CA_BUNDLE" },
    ],
  },
  { type: "aws-cn", envs: [], files: [{ keys: ["config"], env: "AWS_CN_CONFIG_FILE" }] },
  {
    type: "azure",
    envs: [],
    files: [
      { keys: ["azure.json"], env: "AZURE_CONFIG" },
      { keys: ["azure.pem"], env: "AZURE_CERT_KEY" },
      { keys: ["azureProfile.json"], env: "AZURE_PROFILE" },
    ],
  },
  { type: "gcp", envs: [], files: [{ keys: ["gcp.json"], env: "GCP_IMAGE_UPLOAD_CONFIG" }] },
  { type: "internal-ca", envs: [], files: [{ keys: ["ca.crt"], env: "SSL_CERT_FILE" }] },
  {
    type: "push-secret",
    envs: [],
    files: [{ keys: ["docker.json", "docker.cfg"], env: "PUSH_AUTH_JSON" }],
  },
  {
    type: "pull-secret",
    envs: [],
    files: [{ keys: ["docker.json", "docker.cfg"], env: "PULL_AUTH_JSON" }],
  },
  {
    type: "keytab",
    envs: [],
    files: [
      { keys: ["keytab"], env: "KOJI_KEYTAB" },
      { keys: ["principle"], env: "KOJI_PRINCIPAL" },
      { keys: ["config"], env: "KOJI_CONFIG" },
    ],
  },
];

/** One row of the §7.4 table. */
export interface MountRefMapping {
  /** The label value. */
  type: string;
  /** Pod volume name. */
  volume: string;
  /** The kind Gangplank assumed; the object's real kind is what gets mounted. */
  defaultKind: "Secret" | "ConfigMap";
  mountPath: string;
  /**
   * File mode of the mounted files. Public material (CA certificates, client configs) is 0444;
   * anything that is a credential is 0600. A Secret is never mounted wider than 0600 unless
   * the row is `public`.
   */
  mode: number;
  /** True when the content is public (CA certificates): a Secret keeps `mode`. */
  public: boolean;
}

/**
 * The §7.4 table. Differences from Gangplank: the volume type follows the object's kind (a
 * Secret labelled `krb5.conf` is mounted as a Secret), and modes are octal (Gangplank wrote
 * decimal 444, i.e. 0674).
 */
export const MOUNT_REF_MAPPINGS: readonly MountRefMapping[] = [
  {
    type: "internal-ca",
    volume: "pki",
    defaultKind: "Secret",
    mountPath: "/etc/pki/ca-trust/source/anchors2",
    mode: 0o444,
    public: true,
  },
  {
    type: "docker.json",
    volume: "docker-json",
    defaultKind: "Secret",
    mountPath: "/srv/secrets/auths",
    mode: 0o600,
    public: false,
  },
  {
    type: "koji-ca",
    volume: "koji-ca",
    defaultKind: "ConfigMap",
    mountPath: "/etc/pki/brew",
    mode: 0o444,
    public: true,
  },
  {
    type: "koji-config",
    volume: "koji-config",
    defaultKind: "ConfigMap",
    mountPath: "/etc/koji.conf.d",
    mode: 0o444,
    public: false,
  },
  {
    type: "krb5.conf",
    volume: "koji-kerberos",
    defaultKind: "ConfigMap",
    mountPath: "/etc/krb5.conf.d",
    mode: 0o444,
    public: false,
  },
];
