/**
 * Pushing the oscontainer after a successful stage (reference §5 step 11.2, §9 "Registry
 * push"), with §12.1.21 and §12.2.1-3 fixed: image references are parsed properly (ports,
 * digests and tags kept intact), auth is written to a private `<srv>/.docker/config.json`
 * (dir 0700, file 0600) and always removed, a service-account token never appears on a command
 * line (it goes into the auth file), and no secret is ever logged.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { chmod, lstat, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BuildInfo } from "../cosa/meta.ts";
import { GangplankError, UsageError } from "../errors/mod.ts";
import type { PublishOscontainer, Registry } from "../jobspec/types.ts";
import type { CommandRunner } from "./runner.ts";
import { quote } from "../toolkit/shell.ts";
import { redactor } from "../toolkit/redact.ts";

/** Where a pod's service-account token is mounted. */
export const DEFAULT_SA_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/** The registry used when a reference names none (as docker/podman do). */
export const DEFAULT_REGISTRY = "docker.io";

/** A parsed image reference (`[registry/]path[:tag][@digest]`). */
export interface ImageRef {
  /** Registry host (with port); {@link DEFAULT_REGISTRY} when the reference names none. */
  registry: string;
  /** True when the registry was written in the reference. */
  explicitRegistry: boolean;
  /** Repository path (`org/name`). */
  path: string;
  tag?: string;
  /** `sha256:<hex>` */
  digest?: string;
  /** The reference without tag or digest, as written (`[registry/]path`). */
  name: string;
}

/** An image reference that cannot be parsed. */
export class ImageRefError extends UsageError {
  constructor(readonly ref: string, readonly reason: string) {
    super(`image reference ${JSON.stringify(ref)}: ${reason}`);
  }
}

/** Pushing to one registry failed; the message names the registry, never a secret. */
export class OscontainerPushError extends GangplankError {
  constructor(
    readonly index: number,
    readonly registry: string,
    readonly url: string,
    reason: string,
  ) {
    super(
      `oscontainer push to registry ${registry} (publish_oscontainer.registries[${index}] ` +
        `${url}) failed: ${reason}`,
    );
  }
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[A-Za-z0-9=_-]{32,}$/;
const HOST = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]+)?$/;

/**
 * Parses `[registry/]path[:tag][@digest]` (an optional `docker://` prefix is ignored). The
 * first `/`-separated part is the registry when it contains `.` or `:` or is `localhost`.
 * @throws {ImageRefError}
 */
export function parseImageRef(ref: string): ImageRef {
  let rest = ref.trim();
  if (rest.startsWith("docker://")) rest = rest.slice("docker://".length);
  if (rest === "") throw new ImageRefError(ref, "empty");
  if (/\s/.test(rest)) throw new ImageRefError(ref, "contains whitespace");
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ImageRefError(ref, `invalid digest "${digest}"`);
  }
  let registry = DEFAULT_REGISTRY;
  let explicitRegistry = false;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      if (!HOST.test(first)) throw new ImageRefError(ref, `invalid registry "${first}"`);
      registry = first;
      explicitRegistry = true;
      rest = rest.slice(slash + 1);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon >= 0 && colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new ImageRefError(ref, `invalid tag "${tag}"`);
  }
  if (rest === "") throw new ImageRefError(ref, "no repository path");
  for (const c of rest.split("/")) {
    if (!PATH_COMPONENT.test(c)) {
      throw new ImageRefError(ref, `invalid repository path component "${c}"`);
    }
  }
  return {
    registry,
    explicitRegistry,
    path: rest,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
    name: explicitRegistry ? `${registry}/${rest}` : rest,
  };
}

/**
 * True when the build after a stage should be pushed: it has artifacts, and there was no build
 * before the stage or its `images.ostree.sha256` changed.
 */
export function shouldPushOscontainer(
  before: BuildInfo | undefined,
  after: BuildInfo | undefined,
): boolean {
  if (!after || Object.keys(after.meta.images ?? {}).length === 0) return false;
  if (!before) return true;
  return before.meta.images?.ostree?.sha256 !== after.meta.images?.ostree?.sha256;
}

/**
 * Every secret string a `publish_oscontainer` section holds (the raw secrets and the
 * credential values inside inline auth JSON), for redaction of logged lines.
 */
export function registrySecrets(pub: PublishOscontainer | undefined): string[] {
  const out = new Set<string>();
  for (const r of pub?.registries ?? []) {
    if (!r.secret || r.secret_type?.toLowerCase() === "cluster") continue;
    out.add(r.secret);
    out.add(r.secret.trim());
    try {
      collectCredentials(JSON.parse(r.secret), out);
    } catch { /* not JSON */ }
  }
  out.delete("");
  return [...out];
}

const CREDENTIAL_KEYS = new Set([
  "auth",
  "password",
  "identitytoken",
  "registrytoken",
  "token",
  "secret",
]);

function collectCredentials(v: unknown, out: Set<string>): void {
  if (!v || typeof v !== "object") return;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x === "string" && CREDENTIAL_KEYS.has(k.toLowerCase()) && x.length >= 4) {
      out.add(x);
      if (k.toLowerCase() === "auth") {
        const decoded = Buffer.from(x, "base64").toString("utf8");
        const pw = decoded.slice(decoded.indexOf(":") + 1);
        if (pw.length >= 4) out.add(pw);
      }
    } else collectCredentials(x, out);
  }
}

/** A logger that replaces every occurrence of any of `secrets` with `***`. */
export function redactingLog(
  log: (line: string) => void,
  secrets: readonly string[],
): (line: string) => void {
  if (!secrets.some((s) => s !== "")) return log;
  const hide = redactor(secrets);
  return (line) => log(hide(line));
}

/** Dependencies of {@link pushOscontainer}. */
export interface OscontainerDeps {
  runner: CommandRunner;
  /** Environment of the commands (the push variables are added to it). */
  env: Record<string, string>;
  /** The srv dir: cwd and `HOME` of the commands; auth goes to `<srv>/.docker/config.json`. */
  srvDir: string;
  /** A private directory for the command scripts. */
  scriptDir: string;
  log: (line: string) => void;
  signal: AbortSignal;
  /** Service-account token file for `secret_type: token` (default {@link DEFAULT_SA_TOKEN_PATH}). */
  tokenPath?: string;
}

/** The auth file content for a registry entry, or undefined for an anonymous push. */
async function authConfig(
  r: Registry,
  index: number,
  ref: ImageRef,
  deps: OscontainerDeps,
): Promise<{ text: string; secrets: string[] } | undefined> {
  const type = r.secret_type?.toLowerCase();
  const fail = (reason: string) => new OscontainerPushError(index, ref.registry, r.url, reason);
  switch (type) {
    case undefined:
      return undefined;
    case "inline": {
      if (!r.secret) throw fail("secret_type inline needs a secret (docker auth JSON)");
      try {
        const v = JSON.parse(r.secret);
        if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error();
      } catch {
        throw fail("the inline secret is not a JSON object (docker auth config)");
      }
      return { text: r.secret, secrets: registrySecrets({ registries: [r] }) };
    }
    case "token": {
      const path = deps.tokenPath ?? DEFAULT_SA_TOKEN_PATH;
      let token: string;
      try {
        token = (await readFile(path, "utf8")).trim();
      } catch (e) {
        throw fail(
          `secret_type token: cannot read the service-account token ${path}: ` +
            ((e as NodeJS.ErrnoException).code ?? "error"),
        );
      }
      if (token === "") throw fail(`secret_type token: ${path} is empty`);
      const auth = Buffer.from(`serviceaccount:${token}`).toString("base64");
      return {
        text: JSON.stringify({ auths: { [ref.registry]: { auth } } }),
        secrets: [token, auth],
      };
    }
    case "cluster":
      throw fail(
        "secret_type cluster needs the in-cluster secret mapping, which is not available to " +
          "this worker; use inline or token",
      );
    default:
      throw fail(`secret type ${JSON.stringify(r.secret_type)} is unknown`);
  }
}

/** Creates `<srv>/.docker` (0700, a real directory) and writes config.json (0600). */
async function writeAuthFile(srv: string, text: string): Promise<{ dir: string; file: string }> {
  const dir = join(srv, ".docker");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await lstat(dir);
  if (!st.isDirectory() || st.isSymbolicLink()) throw new Error(`${dir} is not a directory`);
  await chmod(dir, 0o700);
  const file = join(dir, "config.json");
  await rm(file, { force: true });
  await writeFile(file, text, { mode: 0o600, flag: "wx" });
  await chmod(file, 0o600);
  return { dir, file };
}

/**
 * Pushes the build to every `publish_oscontainer.registries[]` entry, in order: for each,
 * `cosa upload-oscontainer --name=<registry/path>` then
 * `skopeo copy docker://<registry/path>:<buildId> docker://<url>`, with the registry's auth
 * in `<srv>/.docker/config.json` (removed afterwards, whatever happens).
 * @throws {OscontainerPushError} on the first failure (naming the registry, never the secret).
 * @throws {ImageRefError} for an unparsable url.
 */
export async function pushOscontainer(
  pub: PublishOscontainer | undefined,
  buildId: string,
  deps: OscontainerDeps,
): Promise<void> {
  const registries = pub?.registries ?? [];
  for (const [i, r] of registries.entries()) {
    if (deps.signal.aborted) return;
    const ref = parseImageRef(r.url);
    const fail = (reason: string) => new OscontainerPushError(i, ref.registry, r.url, reason);
    const tls = r.tls_verify !== false;
    const auth = await authConfig(r, i, ref, deps);
    const log = redactingLog(deps.log, auth?.secrets ?? []);
    const hide = auth?.secrets.some((x) => x !== "") ? redactor(auth.secrets) : (l: string) => l;
    const env: Record<string, string> = {
      ...deps.env,
      FORCE_UNPRIVILEGED: "1",
      HOME: deps.srvDir,
    };
    delete env.REGISTRY_AUTH_FILE;
    delete env.DISABLE_TLS_VERIFICATION;
    if (!tls) env.DISABLE_TLS_VERIFICATION = "1";
    let written: { dir: string; file: string } | undefined;
    let createdDir = false;
    try {
      if (auth) {
        try {
          await lstat(join(deps.srvDir, ".docker"));
        } catch {
          createdDir = true;
        }
        try {
          written = await writeAuthFile(deps.srvDir, auth.text);
        } catch (e) {
          throw fail(`cannot write the auth file: ${(e as NodeJS.ErrnoException).code ?? "error"}`);
        }
        env.REGISTRY_AUTH_FILE = written.file;
      }
      const tlsFlags = tls ? [] : ["--src-tls-verify=false", "--dest-tls-verify=false"];
      const commands: [string, string[]][] = [
        ["cosa upload-oscontainer", ["cosa", "upload-oscontainer", `--name=${ref.name}`]],
        ["skopeo copy", [
          "skopeo",
          "copy",
          ...tlsFlags,
          `docker://${ref.name}:${buildId}`,
          `docker://${r.url.replace(/^docker:\/\//, "")}`,
        ]],
      ];
      log(
        `gangway: pushing build ${buildId} to ${r.url} (registry ${ref.registry}, ` +
          `tls_verify ${tls}, auth ${r.secret_type ?? "none"})`,
      );
      for (const [k, [label, argv]] of commands.entries()) {
        const source = argv.map(quote).join(" ");
        const file = join(deps.scriptDir, `push-${i}-${k}.sh`);
        await writeFile(file, source + "\n", { mode: 0o700 });
        log(`gangway: ${source}`);
        let last = "";
        const res = await deps.runner.run(file, {
          env,
          cwd: deps.srvDir,
          signal: deps.signal,
          onLine: (l) => {
            if (l.trim() !== "") last = l.trim();
            log(l);
          },
        });
        if (deps.signal.aborted) return;
        if (res.code !== 0 || res.signal) {
          // The command's last line says why (unauthorized, x509, connection refused).
          // Its end holds the cause: keep the last 400 characters.
          const h = hide(last);
          const why = h ? `: ${h.length > 400 ? `...${h.slice(-400)}` : h}` : "";
          throw fail(
            res.signal
              ? `${label} was killed by ${res.signal}`
              : `${label} exited with code ${res.code}${why}`,
          );
        }
      }
      log(`gangway: pushed build ${buildId} to ${r.url}`);
    } finally {
      if (written) {
        await rm(createdDir ? written.dir : written.file, { recursive: true, force: true })
          .catch(() => {});
      }
    }
  }
}
