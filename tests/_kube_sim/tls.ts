/**
 * TLS material and the kubeconfig of the Kubernetes test API server.
 *
 * @module
 */

import { NODE_ADDRESSES } from "./network.ts";

let certs: Promise<{ ca: string; cert: string; key: string }> | undefined;

/**
 * A throwaway CA and a server certificate for 127.0.0.1/localhost (EC P-256, made with the
 * `openssl` CLI once per process). kubectl sends bearer tokens only over TLS, so the server
 * speaks HTTPS and the kubeconfig carries the CA.
 */
export function testCertificates(): Promise<{ ca: string; cert: string; key: string }> {
  certs ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "kube-sim-tls-" });
    try {
      const ssl = async (...args: string[]) => {
        const o = await new Deno.Command("openssl", {
          args,
          cwd: dir,
          stdout: "piped",
          stderr: "piped",
        })
          .output();
        if (!o.success) {
          throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(o.stderr)}`);
        }
      };
      const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
      await ssl(
        "req",
        "-x509",
        ...ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3",
        "-subj",
        "/CN=kube-sim-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
      );
      await ssl(
        "req",
        ...ec,
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=kube-apiserver",
      );
      await Deno.writeTextFile(
        `${dir}/ext.cnf`,
        [
          "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default," +
          "DNS:kubernetes.default.svc," + NODE_ADDRESSES.map((a) => `IP:${a}`).join(","),
          "basicConstraints=critical,CA:FALSE",
          "keyUsage=critical,digitalSignature,keyEncipherment",
          "extendedKeyUsage=serverAuth",
          "",
        ].join("\n"),
      );
      await ssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "3",
        "-extfile",
        "ext.cnf",
      );
      return {
        ca: await Deno.readTextFile(`${dir}/ca.crt`),
        cert: await Deno.readTextFile(`${dir}/server.crt`),
        key: await Deno.readTextFile(`${dir}/server.key`),
      };
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  })();
  return certs;
}

/** A kubeconfig whose current context points at `server` with a token user. */
export function kubeconfigYaml(server: string, caCert: string, token: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: kube-sim",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${btoa(caCert)}`,
    "users:",
    "- name: kube-sim-user",
    "  user:",
    `    token: ${token}`,
    "contexts:",
    "- name: kube-sim",
    "  context:",
    "    cluster: kube-sim",
    "    user: kube-sim-user",
    "    namespace: default",
    "current-context: kube-sim",
    "",
  ].join("\n");
}
