/**
 * Command templating: a plain-text subset of Go's text/template over
 * `{ JobSpec, Meta }`, using Gangplank's Go field names (`{{.JobSpec.Recipe.GitRef}}`,
 * `{{.Meta.BuildID}}`). Unlike Gangplank (html/template) nothing is HTML-escaped, and text
 * outside `{{ }}` (heredocs, `<file` redirects) is copied verbatim.
 *
 * Supported: field chains, `$` and `$var`, string/raw/number/bool/nil literals, parentheses,
 * pipelines (`|`), `{{-`/`-}}` trimming, comments, `if`/`else if`/`else`, `range` (with
 * `$i, $e :=`), `with`, and the functions `index`, `printf`, `print`, `println`, `len`,
 * `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `and`, `or`, `not`.
 *
 * @module
 */
import { MetaUnavailableError, TemplateError } from "./errors.ts";
import { type FieldType, type JobSpec, JOBSPEC_TYPE } from "./types.ts";

/** Data a command template is rendered against. `Meta` is the parsed `meta.json`, if any. */
export interface RenderData {
  /** `.JobSpec` in templates. */
  JobSpec: JobSpec;
  /** `.Meta` in templates: the latest build's meta.json. */
  Meta?: unknown;
}

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

interface MetaTy {
  kind: "meta";
  name: string;
  table?: Record<string, string>;
  children?: Record<string, MetaTy>;
}
type Ty = FieldType | MetaTy | { kind: "root" };

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
const META_TY: MetaTy = {
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
const GENERIC_TY: MetaTy = { kind: "meta", name: "map" };

interface TV {
  v: unknown;
  t: Ty;
}

const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, "");

function lookupTable(table: Record<string, string>, name: string): string | undefined {
  if (Object.hasOwn(table, name)) return table[name];
  const lower = name.toLowerCase();
  const k = Object.keys(table).find((g) => g.toLowerCase() === lower);
  return k === undefined ? undefined : table[k];
}

// ---------------------------------------------------------------------------------------------
// Parse tree.

type Operand =
  | { k: "field"; base: "dot" | "var" | "paren"; varName?: string; pipe?: Pipe; chain: string[] }
  | { k: "lit"; v: unknown }
  | { k: "ident"; name: string };
interface Cmd {
  args: Operand[];
}
interface Pipe {
  decl: string[];
  cmds: Cmd[];
}
type TNode =
  | { k: "text"; s: string }
  | { k: "action"; pipe: Pipe }
  | { k: "if" | "with"; pipe: Pipe; body: TNode[]; els: TNode[] }
  | { k: "range"; pipe: Pipe; body: TNode[]; els: TNode[] };

type Tok =
  | { t: "field"; chain: string[] } // .A.B or "." (chain [])
  | { t: "var"; name: string; chain: string[] }
  | { t: "str"; v: string }
  | { t: "num"; v: number }
  | { t: "ident"; v: string }
  | { t: "(" }
  | { t: ")"; chain: string[] }
  | { t: "|" }
  | { t: ":=" }
  | { t: "=" }
  | { t: "," };

class Parser {
  pos = 0;
  constructor(readonly src: string) {}

  fail(msg: string): never {
    const line = this.src.slice(0, this.pos).split("\n").length;
    throw new TemplateError(`template: line ${line}: ${msg}`, this.src);
  }

  /** Splits the source into text and raw action strings, applying trim markers. */
  items(): ({ text: string } | { action: string })[] {
    const out: ({ text: string } | { action: string })[] = [];
    const s = this.src;
    let i = 0;
    let trimNext = false;
    while (i < s.length) {
      const open = s.indexOf("{{", i);
      let text = s.slice(i, open < 0 ? s.length : open);
      if (trimNext) text = text.replace(/^\s+/, "");
      trimNext = false;
      if (open < 0) {
        if (text) out.push({ text });
        break;
      }
      let j = open + 2;
      if (s[j] === "-" && /\s/.test(s[j + 1] ?? "")) {
        text = text.replace(/\s+$/, "");
        j += 1;
      }
      if (text) out.push({ text });
      // find the closing braces, skipping quoted strings
      let k = j;
      let close = -1;
      while (k < s.length) {
        const c = s[k];
        if (c === '"' || c === "'") {
          k++;
          while (k < s.length && s[k] !== c) k += s[k] === "\\" ? 2 : 1;
          k++;
        } else if (c === "`") {
          k = s.indexOf("`", k + 1);
          if (k < 0) break;
          k++;
        } else if (c === "/" && s[k + 1] === "*") {
          const end = s.indexOf("*/", k + 2);
          if (end < 0) break;
          k = end + 2;
        } else if (c === "}" && s[k + 1] === "}") {
          close = k;
          break;
        } else k++;
      }
      if (close < 0) {
        this.pos = open;
        this.fail("unclosed action");
      }
      let body = s.slice(j, close);
      if (/\s-$/.test(body)) {
        body = body.slice(0, -1);
        trimNext = true;
      }
      out.push({ action: body });
      i = close + 2;
      this.pos = i;
    }
    return out;
  }

  lex(a: string): Tok[] {
    const toks: Tok[] = [];
    let i = 0;
    const chain = (): string[] => {
      const c: string[] = [];
      while (a[i] === "." && /[A-Za-z_]/.test(a[i + 1] ?? "")) {
        i++;
        const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(a.slice(i))!;
        c.push(m[0]);
        i += m[0].length;
      }
      return c;
    };
    while (i < a.length) {
      const c = a[i];
      if (/\s/.test(c)) {
        i++;
      } else if (c === "/" && a[i + 1] === "*") {
        const end = a.indexOf("*/", i + 2);
        if (end < 0) this.fail("unclosed comment");
        i = end + 2;
      } else if (c === ".") {
        if (/[A-Za-z_]/.test(a[i + 1] ?? "")) toks.push({ t: "field", chain: chain() });
        else {
          i++;
          toks.push({ t: "field", chain: [] });
        }
      } else if (c === "$") {
        const m = /^\$[A-Za-z0-9_]*/.exec(a.slice(i))!;
        i += m[0].length;
        toks.push({ t: "var", name: m[0], chain: chain() });
      } else if (c === '"') {
        let j = i + 1;
        while (j < a.length && a[j] !== '"') j += a[j] === "\\" ? 2 : 1;
        if (j >= a.length) this.fail("unterminated quoted string");
        try {
          toks.push({ t: "str", v: JSON.parse(a.slice(i, j + 1)) });
        } catch {
          this.fail(`bad string ${a.slice(i, j + 1)}`);
        }
        i = j + 1;
      } else if (c === "`") {
        const j = a.indexOf("`", i + 1);
        if (j < 0) this.fail("unterminated raw string");
        toks.push({ t: "str", v: a.slice(i + 1, j) });
        i = j + 1;
      } else if (/[0-9]/.test(c) || ((c === "-" || c === "+") && /[0-9]/.test(a[i + 1] ?? ""))) {
        const m = /^[-+]?(0x[0-9a-fA-F]+|[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)/.exec(a.slice(i))!;
        toks.push({ t: "num", v: Number(m[0]) });
        i += m[0].length;
      } else if (/[A-Za-z_]/.test(c)) {
        const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(a.slice(i))!;
        toks.push({ t: "ident", v: m[0] });
        i += m[0].length;
      } else if (c === "(") {
        toks.push({ t: "(" });
        i++;
      } else if (c === ")") {
        i++;
        toks.push({ t: ")", chain: chain() });
      } else if (c === "|") {
        toks.push({ t: "|" });
        i++;
      } else if (c === ":" && a[i + 1] === "=") {
        toks.push({ t: ":=" });
        i += 2;
      } else if (c === "=") {
        toks.push({ t: "=" });
        i++;
      } else if (c === ",") {
        toks.push({ t: "," });
        i++;
      } else if (c === "[") {
        this.fail('unexpected "[" in action: index with {{index .X 0}}, not .X[0]');
      } else this.fail(`unexpected ${JSON.stringify(c)} in action`);
    }
    return toks;
  }

  parsePipe(toks: Tok[], allowDecl: boolean): Pipe {
    let p = 0;
    const decl: string[] = [];
    if (allowDecl) {
      const save = p;
      const names: string[] = [];
      while (toks[p]?.t === "var" && (toks[p] as { chain: string[] }).chain.length === 0) {
        names.push((toks[p] as { name: string }).name);
        p++;
        if (toks[p]?.t === ",") p++;
        else break;
      }
      if (names.length && (toks[p]?.t === ":=" || toks[p]?.t === "=")) {
        p++;
        decl.push(...names);
      } else p = save;
    }
    const cmds: Cmd[] = [];
    const parseCmd = (stopParen: boolean): Cmd => {
      const args: Operand[] = [];
      while (p < toks.length) {
        const t = toks[p];
        if (t.t === "|" || (t.t === ")" && stopParen)) break;
        p++;
        switch (t.t) {
          case "field":
            args.push({ k: "field", base: "dot", chain: t.chain });
            break;
          case "var":
            args.push({ k: "field", base: "var", varName: t.name, chain: t.chain });
            break;
          case "str":
          case "num":
            args.push({ k: "lit", v: t.v });
            break;
          case "ident":
            if (t.v === "true" || t.v === "false") args.push({ k: "lit", v: t.v === "true" });
            else if (t.v === "nil") args.push({ k: "lit", v: undefined });
            else args.push({ k: "ident", name: t.v });
            break;
          case "(": {
            const inner: Cmd[] = [parseCmd(true)];
            while (toks[p]?.t === "|") {
              p++;
              inner.push(parseCmd(true));
            }
            const closeTok = toks[p];
            if (closeTok?.t !== ")") this.fail("unclosed (");
            p++;
            args.push({
              k: "field",
              base: "paren",
              pipe: { decl: [], cmds: inner },
              chain: closeTok.chain,
            });
            break;
          }
          default:
            this.fail(`unexpected ${t.t} in command`);
        }
      }
      if (!args.length) this.fail("missing value for command");
      return { args };
    };
    cmds.push(parseCmd(false));
    while (p < toks.length && toks[p].t === "|") {
      p++;
      cmds.push(parseCmd(false));
    }
    if (p < toks.length) this.fail(`unexpected ${toks[p].t} in pipeline`);
    return { decl, cmds };
  }

  parse(): TNode[] {
    const items = this.items();
    let idx = 0;
    const list = (ends: string[]): { nodes: TNode[]; end: string; rest: string } => {
      const nodes: TNode[] = [];
      while (idx < items.length) {
        const it = items[idx++];
        if ("text" in it) {
          nodes.push({ k: "text", s: it.text });
          continue;
        }
        const a = it.action.trim();
        if (a.startsWith("/*")) {
          if (!a.endsWith("*/")) this.fail("unclosed comment");
          continue;
        }
        const kw = /^(if|range|with|else|end|define|template|block)\b\s*([\s\S]*)$/.exec(a);
        if (kw) {
          const [, word, rest] = kw;
          if (word === "end" || word === "else") {
            if (!ends.includes(word)) this.fail(`unexpected {{${word}}}`);
            return { nodes, end: word, rest };
          }
          if (word === "define" || word === "template" || word === "block") {
            this.fail(`{{${word}}} is not supported`);
          }
          nodes.push(this.control(word as "if" | "range" | "with", rest, list));
          continue;
        }
        nodes.push({ k: "action", pipe: this.parsePipe(this.lex(a), true) });
      }
      if (ends.length) this.fail("unexpected EOF: missing {{end}}");
      return { nodes, end: "", rest: "" };
    };
    return list([]).nodes;
  }

  control(
    word: "if" | "range" | "with",
    rest: string,
    list: (ends: string[]) => { nodes: TNode[]; end: string; rest: string },
  ): TNode {
    if (!rest.trim()) this.fail(`missing value for ${word}`);
    const pipe = this.parsePipe(this.lex(rest), true);
    const body = list(["end", "else"]);
    let els: TNode[] = [];
    if (body.end === "else") {
      const r = body.rest.trim();
      const chained = /^(if|with)\b\s*([\s\S]*)$/.exec(r);
      if (chained && word !== "range") {
        // {{else if ...}} / {{else with ...}}: nested control sharing the outer {{end}}
        els = [this.control(chained[1] as "if" | "with", chained[2], list)];
      } else {
        if (r) this.fail(`unexpected ${r} after else`);
        els = list(["end"]).nodes;
      }
    }
    return { k: word, pipe, body: body.nodes, els };
  }
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

function zeroString(t: Ty): string {
  switch (t.kind) {
    case "string":
      return "";
    case "int":
    case "number":
      return "0";
    case "bool":
      return "false";
    case "list":
      return "[]";
    default:
      return "<no value>";
  }
}

/** Go's %v formatting of a value. */
function fmtValue(v: unknown): string {
  if (v === undefined || v === null) return "<nil>";
  if (Array.isArray(v)) return `[${v.map(fmtValue).join(" ")}]`;
  if (typeof v === "object") {
    const keys = Object.keys(v as object).sort();
    return `map[${
      keys.map((k) => `${k}:${fmtValue((v as Record<string, unknown>)[k])}`).join(" ")
    }]`;
  }
  return String(v);
}

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v as object).length > 0;
  return true;
}

const MAX_OUTPUT = 16 * 1024 * 1024;

class Exec {
  out = "";
  vars: { name: string; tv: TV }[];
  steps = 0;
  constructor(readonly src: string, readonly root: TV) {
    this.vars = [{ name: "$", tv: root }];
  }

  fail(msg: string): never {
    throw new TemplateError(`template: ${msg}`, this.src);
  }

  field(tv: TV, name: string, path: string): TV {
    const t = tv.t;
    if (t.kind === "root") {
      if (name === "JobSpec") return { v: (tv.v as RenderData).JobSpec, t: JOBSPEC_TYPE };
      if (name === "Meta") {
        const m = (tv.v as RenderData).Meta;
        if (m === undefined || m === null) {
          throw new MetaUnavailableError(
            "template: .Meta is not available (no meta.json was read)",
            this.src,
          );
        }
        return { v: m, t: META_TY };
      }
      this.fail(`can't evaluate field ${name} in type RenderData`);
    }
    if (t.kind === "object") {
      const fd = t.fields.find((f) => f.go === name) ??
        t.fields.find((f) => f.go.toLowerCase() === name.toLowerCase());
      if (!fd) this.fail(`can't evaluate field ${name} in type ${t.name}`);
      const obj = (tv.v ?? {}) as Record<string, unknown>;
      return { v: obj[fd.key], t: fd.type };
    }
    if (t.kind === "meta") {
      if (tv.v === undefined || tv.v === null) {
        this.fail(`nil pointer evaluating ${path}.${name}`);
      }
      if (typeof tv.v !== "object" || Array.isArray(tv.v)) {
        this.fail(`can't evaluate field ${name} in a non-struct value at ${path}`);
      }
      const obj = tv.v as Record<string, unknown>;
      let key = t.table ? lookupTable(t.table, name) : undefined;
      if (key === undefined) key = Object.keys(obj).find((k) => norm(k) === norm(name));
      if (key === undefined) {
        if (t.table) this.fail(`can't evaluate field ${name} in type ${t.name}`);
        return { v: undefined, t: GENERIC_TY };
      }
      return { v: obj[key], t: t.children?.[key] ?? GENERIC_TY };
    }
    if (t.kind === "any") {
      const obj = tv.v as Record<string, unknown> | undefined;
      if (obj && typeof obj === "object" && Object.hasOwn(obj, name)) return { v: obj[name], t };
      this.fail(`can't evaluate field ${name} at ${path}`);
    }
    this.fail(`can't evaluate field ${name} in type ${t.kind} at ${path}`);
  }

  chain(tv: TV, chain: string[], start: string): TV {
    let cur = tv;
    let path = start;
    for (const name of chain) {
      cur = this.field(cur, name, path);
      path = `${path}.${name}`;
    }
    return cur;
  }

  varLookup(name: string): TV {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      if (this.vars[i].name === name) return this.vars[i].tv;
    }
    this.fail(`undefined variable: ${name}`);
  }

  operand(op: Operand, dot: TV): TV {
    switch (op.k) {
      case "lit":
        return { v: op.v, t: { kind: "any" } };
      case "ident":
        return this.call(op.name, [], dot, undefined);
      case "field": {
        const base = op.base === "dot"
          ? dot
          : op.base === "var"
          ? this.varLookup(op.varName!)
          : this.pipe(op.pipe!, dot);
        return this.chain(base, op.chain, op.base === "var" ? op.varName! : "");
      }
    }
  }

  call(name: string, argOps: Operand[], dot: TV, piped: TV | undefined): TV {
    const any = (v: unknown): TV => ({ v, t: { kind: "any" } });
    if (name === "and" || name === "or") {
      // short-circuit like Go 1.18+
      const ops = [...argOps];
      let last: TV | undefined;
      for (const op of ops) {
        last = this.operand(op, dot);
        if (name === "and" ? !truthy(last.v) : truthy(last.v)) return last;
      }
      if (piped) return piped;
      if (!last) this.fail(`wrong number of args for ${name}`);
      return last;
    }
    const args = argOps.map((o) => this.operand(o, dot));
    if (piped) args.push(piped);
    const vals = args.map((a) => a.v);
    const need = (n: number) => {
      if (vals.length < n) this.fail(`wrong number of args for ${name}: want at least ${n}`);
    };
    switch (name) {
      case "index": {
        need(1);
        let cur = args[0];
        for (const k of vals.slice(1)) {
          if (Array.isArray(cur.v)) {
            if (typeof k !== "number" || !Number.isInteger(k)) {
              this.fail("index: non-integer index");
            }
            if (k < 0 || k >= cur.v.length) this.fail(`index out of range: ${k}`);
            const t = cur.t.kind === "list" ? cur.t.of : { kind: "any" } as const;
            cur = { v: cur.v[k], t };
          } else if (cur.v && typeof cur.v === "object") {
            // Own data only: "constructor", "__proto__", "toString"... are not keys of the data.
            const obj = cur.v as Record<string, unknown>;
            const key = String(k);
            cur = any(Object.hasOwn(obj, key) ? obj[key] : undefined);
          } else if (typeof cur.v === "string") {
            if (typeof k !== "number" || k < 0 || k >= cur.v.length) {
              this.fail(`index out of range: ${k}`);
            }
            cur = any(cur.v.charCodeAt(k));
          } else {
            if (cur.t.kind === "list") this.fail(`index out of range: ${k}`);
            this.fail(`can't index item of type ${typeof cur.v}`);
          }
        }
        return cur;
      }
      case "len": {
        need(1);
        const v = vals[0];
        if (Array.isArray(v) || typeof v === "string") return any(v.length);
        if (v && typeof v === "object") return any(Object.keys(v).length);
        if (v === undefined && (args[0].t.kind === "list" || args[0].t.kind === "string")) {
          return any(0);
        }
        this.fail(`len of ${typeof v}`);
        break;
      }
      case "printf":
        need(1);
        return any(sprintf(String(vals[0]), vals.slice(1), args.slice(1)));
      case "print":
        return any(goPrint(args));
      case "println":
        return any(args.map(display).join(" ") + "\n");
      case "not":
        need(1);
        return any(!truthy(vals[0]));
      case "eq":
        need(2);
        return any(vals.slice(1).some((v) => v === vals[0]));
      case "ne":
        need(2);
        return any(vals[0] !== vals[1]);
      case "lt":
      case "le":
      case "gt":
      case "ge": {
        need(2);
        const [a, b] = vals as [number | string, number | string];
        if (typeof a !== typeof b || (typeof a !== "number" && typeof a !== "string")) {
          this.fail(`${name}: incompatible types for comparison`);
        }
        return any(name === "lt" ? a < b : name === "le" ? a <= b : name === "gt" ? a > b : a >= b);
      }
    }
    this.fail(`function "${name}" not defined`);
  }

  pipe(p: Pipe, dot: TV): TV {
    let cur: TV | undefined;
    for (const c of p.cmds) {
      const first = c.args[0];
      if (first.k === "ident") cur = this.call(first.name, c.args.slice(1), dot, cur);
      else {
        if (c.args.length > 1) this.fail("can't give argument to non-function");
        if (cur) this.fail("can't give argument to non-function");
        cur = this.operand(first, dot);
      }
    }
    return cur!;
  }

  run(nodes: TNode[], dot: TV) {
    for (const n of nodes) {
      if (++this.steps > 1_000_000) this.fail("template execution too long");
      switch (n.k) {
        case "text":
          this.out += n.s;
          break;
        case "action": {
          const v = this.pipe(n.pipe, dot);
          if (n.pipe.decl.length) this.vars.push({ name: n.pipe.decl[0], tv: v });
          else this.out += display(v);
          break;
        }
        case "if":
        case "with": {
          const mark = this.vars.length;
          const v = this.pipe(n.pipe, dot);
          if (n.pipe.decl.length) this.vars.push({ name: n.pipe.decl[0], tv: v });
          if (truthy(v.v)) this.run(n.body, n.k === "with" ? v : dot);
          else this.run(n.els, dot);
          this.vars.length = mark;
          break;
        }
        case "range": {
          const mark = this.vars.length;
          const v = this.pipe(n.pipe, dot);
          let entries: [TV, TV][] = [];
          const any = (x: unknown): TV => ({ v: x, t: { kind: "any" } });
          if (Array.isArray(v.v)) {
            const et: Ty = v.t.kind === "list" ? v.t.of : { kind: "any" };
            entries = v.v.map((x, i) => [any(i), { v: x, t: et }]);
          } else if (v.v && typeof v.v === "object") {
            entries = Object.keys(v.v).sort().map((k) => [
              any(k),
              any((v.v as Record<string, unknown>)[k]),
            ]);
          } else if (typeof v.v === "number" && Number.isInteger(v.v)) {
            entries = Array.from({ length: Math.max(0, Math.min(v.v, 1_000_000)) }, (_, i) => [
              any(i),
              any(i),
            ]);
          } else if (v.v !== undefined && v.v !== null) {
            this.fail(`range can't iterate over ${fmtValue(v.v)}`);
          }
          if (!entries.length) this.run(n.els, dot);
          for (const [k, e] of entries) {
            const inner = this.vars.length;
            if (n.pipe.decl.length === 1) this.vars.push({ name: n.pipe.decl[0], tv: e });
            if (n.pipe.decl.length >= 2) {
              this.vars.push({ name: n.pipe.decl[0], tv: k }, { name: n.pipe.decl[1], tv: e });
            }
            this.run(n.body, e);
            this.vars.length = inner;
          }
          this.vars.length = mark;
          break;
        }
      }
      if (this.out.length > MAX_OUTPUT) this.fail("template output too large");
    }
  }
}

function display(tv: TV): string {
  if (tv.v === undefined) return zeroString(tv.t);
  return fmtValue(tv.v);
}

function goPrint(args: TV[]): string {
  let s = "";
  args.forEach((a, i) => {
    const isStr = typeof a.v === "string";
    if (i > 0 && !isStr && typeof args[i - 1].v !== "string") s += " ";
    s += display(a);
  });
  return s;
}

function sprintf(format: string, vals: unknown[], tvs: TV[]): string {
  let i = 0;
  return format.replace(
    /%([-+# 0]*)(\d*)(?:\.(\d+))?([a-zA-Z%])/g,
    (m, _flags, width, prec, verb) => {
      if (verb === "%") return "%";
      if (i >= vals.length) return `%!${verb}(MISSING)`;
      const v = vals[i];
      const tv = tvs[i++];
      let s: string;
      switch (verb) {
        case "s":
        case "v":
          s = display(tv);
          break;
        case "q":
          s = JSON.stringify(typeof v === "string" ? v : display(tv));
          break;
        case "d":
          s = typeof v === "number" ? String(Math.trunc(v)) : `%!d(${display(tv)})`;
          break;
        case "f":
          s = typeof v === "number" ? v.toFixed(prec ? Number(prec) : 6) : `%!f(${display(tv)})`;
          break;
        case "x":
          s = typeof v === "number"
            ? Math.trunc(v).toString(16)
            : [...new TextEncoder().encode(String(v))].map((b) => b.toString(16).padStart(2, "0"))
              .join("");
          break;
        case "t":
          s = String(!!v);
          break;
        default:
          return m;
      }
      if (width && s.length < Number(width)) s = s.padStart(Number(width));
      return s;
    },
  );
}

/**
 * Renders one command template against `{ JobSpec, Meta }` as plain text.
 *
 * @throws {TemplateError} on syntax errors, unknown fields or functions, and when `.Meta` is
 *   used but no meta.json was given.
 * @example
 * renderTemplate("cosa init {{.JobSpec.Recipe.GitURL}}", { JobSpec: spec })
 */
export function renderTemplate(template: string, data: RenderData): string {
  if (!template.includes("{{")) return template;
  const nodes = new Parser(template).parse();
  const ex = new Exec(template, { v: data, t: { kind: "root" } });
  ex.run(nodes, ex.root);
  return ex.out;
}

/**
 * Checks a template's syntax without data (what can be checked before a run).
 *
 * @throws {TemplateError}
 */
export function checkTemplateSyntax(template: string): void {
  if (template.includes("{{")) new Parser(template).parse();
}
