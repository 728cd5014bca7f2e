/**
 * Field resolution for templates: cosa's meta.json Go field names and the types templates
 * walk (`.JobSpec...` through lib/jobspec's `JOBSPEC_TYPE`, `.Meta...` through the tables
 * here), so a misspelt field is an error naming the type, as in Go.
 *
 * @module
 */
import type { FieldType } from "./types.ts";

// Go field names of cosa's meta.json (cosa_v1.go, derived from the schema titles).
const META_ROOT: Record<string, string> = {
  AdvisoryDiffAgainstParent: "parent-advisories-diff",
  AdvisoryDiffBetweenBuilds: "advisories-diff",
  AlibabaAliyunUploads: "aliyun",
  Amis: "amis",
  Architecture: "coreos-assembler.basearch",
  AwsWinLI: "aws-winli",
  Azure: "azure",
  BaseOsContainer: "base-oscontainer",
  BuildArtifacts: "images",
  BuildID: "buildid",
  BuildRef: "ref",
  BuildSummary: "summary",
  BuildTimeStamp: "coreos-assembler.build-timestamp",
  BuildURL: "build-url",
  ConfigGitRev: "coreos-assembler.config-gitrev",
  ConfigVariant: "coreos-assembler.config-variant",
  ContainerConfigGit: "coreos-assembler.container-config-git",
  CoreOSSource: "coreos-assembler.code-source",
  CosaContainerImageGit: "coreos-assembler.container-image-git",
  CosaDelayedMetaMerge: "coreos-assembler.delayed-meta-merge",
  CosaImageChecksum: "coreos-assembler.image-config-checksum",
  CosaImageVersion: "coreos-assembler.image-genver",
  CosaImportedOciImage: "coreos-assembler.oci-imported",
  Extensions: "extensions",
  ExtensionsContainer: "extensions-container",
  FedoraCoreOSParentCommit: "fedora-coreos.parent-commit",
  FedoraCoreOSParentVersion: "fedora-coreos.parent-version",
  Gcp: "gcp",
  GitDirty: "coreos-assembler.config-dirty",
  IbmCloud: "ibmcloud",
  ImageInputChecksum: "coreos-assembler.image-input-checksum",
  InputHashOfTheRpmOstree: "rpm-ostree-inputhash",
  Koji: "koji",
  KubevirtContainer: "kubevirt",
  MetaStamp: "coreos-assembler.meta-stamp",
  Name: "name",
  OciLabels: "coreos-assembler.oci-imported-labels",
  Oscontainer: "oscontainer",
  OstreeCommit: "ostree-commit",
  OstreeContentBytesWritten: "ostree-content-bytes-written",
  OstreeContentChecksum: "ostree-content-checksum",
  OstreeNCacheHits: "ostree-n-cache-hits",
  OstreeNContentTotal: "ostree-n-content-total",
  OstreeNContentWritten: "ostree-n-content-written",
  OstreeNMetadataTotal: "ostree-n-metadata-total",
  OstreeNMetadataWritten: "ostree-n-metadata-written",
  OstreeTimestamp: "ostree-timestamp",
  OstreeVersion: "ostree-version",
  OverridesActive: "coreos-assembler.overrides-active",
  PkgdiffAgainstParent: "parent-pkgdiff",
  PkgdiffBetweenBuilds: "pkgdiff",
  PowerVirtualServer: "powervs",
  ReleasePayload: "release-payload",
  S3: "s3",
  YumReposGit: "coreos-assembler.yumrepos-git",
};
const META_IMAGES: Record<string, string> = {
  Aliyun: "aliyun",
  AppleHV: "applehv",
  Aws: "aws",
  Azure: "azure",
  AzureStack: "azurestack",
  Dasd: "dasd",
  DigitalOcean: "digitalocean",
  Exoscale: "exoscale",
  ExtensionsContainer: "extensions-container",
  Gcp: "gcp",
  Hetzner: "hetzner",
  HyperV: "hyperv",
  IbmCloud: "ibmcloud",
  Initramfs: "initramfs",
  Iso: "iso",
  Kernel: "kernel",
  KubeVirt: "kubevirt",
  LegacyOscontainer: "legacy-oscontainer",
  LiveInitramfs: "live-initramfs",
  LiveIso: "live-iso",
  LiveKernel: "live-kernel",
  LiveRootfs: "live-rootfs",
  Metal: "metal",
  Metal4kNative: "metal4k",
  Nutanix: "nutanix",
  NvidiaBluefield: "nvidiabluefield",
  OSTree: "ostree",
  OciManifest: "oci-manifest",
  OpenStack: "openstack",
  OracleCloudInfrastructure: "oraclecloud",
  PowerVirtualServer: "powervs",
  ProxmoxVE: "proxmoxve",
  Qemu: "qemu",
  SecureExecutionIgnitionPubKey: "ignition-gpg-key",
  SecureExecutionQemu: "qemu-secex",
  VMWare: "vmware",
  VirtualBox: "virtualbox",
  Vultr: "vultr",
};
const META_ARTIFACT: Record<string, string> = {
  Path: "path",
  Sha256: "sha256",
  SizeInBytes: "size",
  SkipCompression: "skip-compression",
  UncompressedSha256: "uncompressed-sha256",
  UncompressedSize: "uncompressed-size",
};

// ---------------------------------------------------------------------------------------------
// Types for field resolution.

/** A meta.json object type: its Go name, field table and typed children. */
export interface MetaTy {
  kind: "meta";
  name: string;
  table?: Record<string, string>;
  children?: Record<string, MetaTy>;
}
/** The static type of a template value (drives "can't evaluate field" errors). */
export type Ty = FieldType | MetaTy | { kind: "root" };

const ARTIFACT_TY: MetaTy = { kind: "meta", name: "Artifact", table: META_ARTIFACT };
const IMAGES_TY: MetaTy = {
  kind: "meta",
  name: "BuildArtifacts",
  table: META_IMAGES,
  children: Object.fromEntries(Object.values(META_IMAGES).map((k) => [k, ARTIFACT_TY])),
};
const GIT_TY: MetaTy = {
  kind: "meta",
  name: "Git",
  table: { Branch: "branch", Commit: "commit", Dirty: "dirty", Origin: "origin" },
};
/** The type of `.Meta`. */
export const META_TY: MetaTy = {
  kind: "meta",
  name: "Build",
  table: META_ROOT,
  children: {
    images: IMAGES_TY,
    "coreos-assembler.container-config-git": GIT_TY,
    "coreos-assembler.container-image-git": GIT_TY,
    "coreos-assembler.yumrepos-git": GIT_TY,
  },
};
/** Any other JSON object (a Go map). */
export const GENERIC_TY: MetaTy = { kind: "meta", name: "map" };

/** A value with its static type. */
export interface TV {
  v: unknown;
  t: Ty;
}

/** A name reduced for case- and punctuation-insensitive matching. */
export const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, "");

/** The JSON key of Go field `name` in `table`, if it has one. */
export function lookupTable(table: Record<string, string>, name: string): string | undefined {
  if (Object.hasOwn(table, name)) return table[name];
  const lower = name.toLowerCase();
  const k = Object.keys(table).find((g) => g.toLowerCase() === lower);
  return k === undefined ? undefined : table[k];
}
