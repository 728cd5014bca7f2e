/**
 * A real container registry for tests: Debian's `docker-registry` (the CNCF distribution
 * registry) on loopback, with TLS from a throwaway CA and htpasswd (bcrypt) auth.
 *
 * @module
 */

import { join } from "node:path";
import { testCertificates } from "../_kube_sim/tls.ts";
import { type Service, startService } from "./procs.ts";

/** A running test registry; disposing it stops the registry and removes its storage. */
export interface TestRegistry extends AsyncDisposable {
  /** `127.0.0.1:<port>` */
  address: string;
  /** The CA that signed the registry's certificate (PEM file). */
  caFile: string;
  user: string;
  password: string;
  /** The registry's storage and config. */
  dir: string;
  service: Service;
}

function freePort(host: string): number {
  const l = Deno.listen({ hostname: host, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Starts a registry listening on `host` (default 127.0.0.1; the test CA's certificate also names
 * every `10.213.*.1`, the test cluster's node addresses); `user`/`password` are the only
 * credentials it accepts.
 */
export async function startRegistry(
  opts: { user?: string; password?: string; host?: string } = {},
): Promise<TestRegistry> {
  const user = opts.user ?? "builder";
  const password = opts.password ?? "pa55-" + crypto.randomUUID().slice(0, 8);
  const host = opts.host ?? "127.0.0.1";
  const dir = await Deno.makeTempDir({ prefix: "gp-registry-" });
  const tls = await testCertificates();
  const caFile = join(dir, "ca.crt");
  await Deno.writeTextFile(caFile, tls.ca);
  await Deno.writeTextFile(join(dir, "server.crt"), tls.cert);
  await Deno.writeTextFile(join(dir, "server.key"), tls.key, { mode: 0o600 });
  const h = await new Deno.Command("htpasswd", {
    args: ["-Bbn", user, password],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!h.success) throw new Error(`htpasswd: ${new TextDecoder().decode(h.stderr)}`);
  await Deno.writeFile(join(dir, "htpasswd"), h.stdout, { mode: 0o600 });
  const port = freePort(host);
  const address = `${host}:${port}`;
  await Deno.writeTextFile(
    join(dir, "config.yml"),
    [
      "version: 0.1",
      "log: {level: warn}",
      `storage: {filesystem: {rootdirectory: ${join(dir, "data")}}}`,
      `http: {addr: "${address}", tls: {certificate: ${join(dir, "server.crt")}, key: ${
        join(dir, "server.key")
      }}}`,
      `auth: {htpasswd: {realm: gangplank-test, path: ${join(dir, "htpasswd")}}}`,
      "",
    ].join("\n"),
  );
  const client = Deno.createHttpClient({ caCerts: [tls.ca] });
  const service = await startService("docker-registry", {
    args: ["serve", join(dir, "config.yml")],
    what: "docker-registry",
    ready: async () => {
      const r = await fetch(`https://${address}/v2/`, { client });
      await r.body?.cancel();
      return r.status === 401;
    },
  });
  client.close();
  return {
    address,
    caFile,
    user,
    password,
    dir,
    service,
    async [Symbol.asyncDispose]() {
      await service.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** `skopeo inspect` of `ref` (a `docker://` reference) with the registry's credentials. */
export async function inspectImage(
  reg: TestRegistry,
  ref: string,
): Promise<{ ok: boolean; json?: Record<string, unknown>; stderr: string }> {
  const o = await new Deno.Command("skopeo", {
    args: ["inspect", `--creds=${reg.user}:${reg.password}`, `docker://${ref}`],
    env: { SSL_CERT_FILE: reg.caFile },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(o.stderr);
  if (!o.success) return { ok: false, stderr };
  return { ok: true, json: JSON.parse(new TextDecoder().decode(o.stdout)), stderr };
}
