import assert from "node:assert/strict";
import net from "node:net";
import {
  connectSsh,
  HostKeyError,
  parseKnownHosts,
  SshConnectionError,
  type SshConnectOptions,
  SshKeyError,
  sshSocketConnector,
} from "../../lib/ssh/mod.ts";
import { PodmanClient } from "../../lib/podman/mod.ts";
import { sshdMissing, startSshd, type TestSshd } from "../_helpers/sshd.ts";
import { podmanMissing, startPodmanService } from "../_helpers/podman.ts";
import { tempDir, waitFor } from "../_helpers/mod.ts";

const missing = sshdMissing();
if (missing) console.log(`SKIP tests/ssh/connection_test.ts: ${missing}`);

async function opts(
  sshd: TestSshd,
  extra: Partial<SshConnectOptions> = {},
): Promise<SshConnectOptions> {
  return {
    host: sshd.host,
    port: sshd.port,
    user: "root",
    privateKey: await Deno.readTextFile(sshd.userKeyPath),
    hostKeys: {
      kind: "known-hosts",
      entries: parseKnownHosts(await Deno.readTextFile(sshd.knownHostsPath)),
      files: [sshd.knownHostsPath],
    },
    signal: AbortSignal.timeout(30_000),
    ...extra,
  };
}

/** A TCP echo server on 127.0.0.1 that counts its connections. */
async function echoServer(): Promise<AsyncDisposable & { port: number; count: () => number }> {
  let n = 0;
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    n++;
    socks.add(s);
    s.on("close", () => socks.delete(s));
    s.on("error", () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    count: () => n,
    async [Symbol.asyncDispose]() {
      for (const s of socks) s.destroy();
      await new Promise((r) => srv.close(r));
    },
  };
}

function roundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(text));
    let got = "";
    s.on("data", (d) => {
      got += d;
      if (got.length >= text.length) {
        s.destroy();
        resolve(got);
      }
    });
    s.on("error", reject);
  });
}

Deno.test({
  name: "ssh: known host, exec, remote forward on a port the remote picks",
  ignore: !!missing,
}, async () => {
  await using sshd = await startSshd();
  await using echo = await echoServer();
  await using conn = await connectSsh(await opts(sshd));
  const r = await conn.exec("echo hello-$((1+2))", { signal: AbortSignal.timeout(10_000) });
  assert.deepEqual([r.code, r.stdout], [0, "hello-3\n"]);
  await using fwd = await conn.forwardRemote({ host: "127.0.0.1", port: echo.port }, {
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(fwd.remoteHost, "127.0.0.1");
  assert.ok(fwd.remotePort > 0 && fwd.remotePort !== echo.port);
  assert.equal(await roundTrip(fwd.remotePort, "ping-through-forward"), "ping-through-forward");
  assert.equal(await roundTrip(fwd.remotePort, "again"), "again");
  await waitFor(() => fwd.stats.bytesOut >= 25, { what: "forward byte counters" });
  assert.equal(fwd.stats.connections, 2);
  assert.equal(echo.count(), 2);
});

Deno.test({
  name: "ssh: podman API over the SSH connection (direct-streamlocal to the socket)",
  ignore: !!missing || !!podmanMissing(),
}, async () => {
  await using sshd = await startSshd();
  await using svc = await startPodmanService();
  await using conn = await connectSsh(await opts(sshd));
  const podman = new PodmanClient({ connect: sshSocketConnector(conn, svc.socketPath) });
  const info = await podman.info({ signal: AbortSignal.timeout(20_000) });
  assert.equal(typeof info.host.arch, "string");
  assert.ok(
    ["x86_64", "aarch64"].includes(await podman.arch({ signal: AbortSignal.timeout(20_000) })),
  );
});

Deno.test({
  name: "ssh: an unknown host key is refused with its SHA256 fingerprint",
  ignore: !!missing,
}, async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const err = await connectSsh(
    await opts(sshd, {
      hostKeys: { kind: "known-hosts", entries: [], files: [`${dir.path}/known_hosts`] },
    }),
  ).catch((e) => e);
  assert.ok(err instanceof HostKeyError, String(err));
  assert.equal(err.kind, "unknown");
  assert.equal(err.fingerprint, sshd.hostFingerprint);
  assert.ok(err.message.includes(sshd.hostFingerprint), err.message);
  assert.ok(err.message.includes(`[127.0.0.1]:${sshd.port}`), err.message);
});

Deno.test({
  name: "ssh: a changed host key is refused; skipping the check needs the explicit policy",
  ignore: !!missing,
}, async () => {
  await using sshd = await startSshd();
  const other = "AAAAC3NzaC1lZDI1NTE5AAAAIEV8qJk0ncCyc1hBf1yqzCNoOHPPQdU3wm5bxzb8ecVh";
  const err = await connectSsh(
    await opts(sshd, {
      hostKeys: {
        kind: "known-hosts",
        entries: parseKnownHosts(`[127.0.0.1]:${sshd.port} ssh-ed25519 ${other}\n`),
        files: ["kh"],
      },
    }),
  ).catch((e) => e);
  assert.ok(err instanceof HostKeyError, String(err));
  assert.equal(err.kind, "changed");
  assert.equal(err.fingerprint, sshd.hostFingerprint);
  await using conn = await connectSsh(await opts(sshd, { hostKeys: { kind: "insecure-ignore" } }));
  const r = await conn.exec("true", { signal: AbortSignal.timeout(10_000) });
  assert.equal(r.code, 0);
});

Deno.test(
  { name: "ssh: a key the server does not accept fails clearly", ignore: !!missing },
  async () => {
    await using sshd = await startSshd();
    await using dir = await tempDir();
    const k = `${dir.path}/other`;
    const gen = await new Deno.Command("ssh-keygen", {
      args: ["-q", "-t", "ed25519", "-N", "", "-f", k],
    }).output();
    assert.ok(gen.success);
    const err = await connectSsh(await opts(sshd, { privateKey: await Deno.readTextFile(k) }))
      .catch((e) => e);
    assert.ok(err instanceof SshConnectionError, String(err));
    assert.match(err.message, /authentication as root failed/);
  },
);

Deno.test({
  name: "ssh: killing sshd drops the connection promptly (lost signal, streams fail fast)",
  ignore: !!missing,
}, async () => {
  await using sshd = await startSshd();
  await using conn = await connectSsh(await opts(sshd));
  assert.equal(conn.lost.aborted, false);
  const t0 = Date.now();
  await sshd.killAll();
  await waitFor(() => conn.lost.aborted, { timeoutMs: 5000, what: "connection lost" });
  assert.ok(Date.now() - t0 < 5000);
  assert.ok(conn.lost.reason instanceof SshConnectionError);
  await assert.rejects(
    conn.openStreamLocal("/tmp/nothing.sock", { signal: AbortSignal.timeout(5000) }),
    SshConnectionError,
  );
});

Deno.test({
  name: "ssh: a silent dead peer is detected by keepalives within interval x count",
  ignore: !!missing,
}, async () => {
  await using sshd = await startSshd();
  await using conn = await connectSsh(
    await opts(sshd, { keepaliveIntervalMs: 300, keepaliveCountMax: 2 }),
  );
  sshd.freezeSessions();
  const t0 = Date.now();
  await waitFor(() => conn.lost.aborted, { timeoutMs: 8000, what: "keepalive timeout" });
  assert.ok(Date.now() - t0 < 8000);
  assert.match(String((conn.lost.reason as Error).message), /keepalive|lost/);
});

Deno.test({
  name: "ssh: authentication through ssh-agent (no key file)",
  ignore: !!missing,
}, async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir("gp-agent-");
  const sock = `${dir.path}/agent.sock`;
  const agent = new Deno.Command("ssh-agent", {
    args: ["-D", "-a", sock],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitFor(() => {
      try {
        return Deno.statSync(sock).isSocket;
      } catch {
        return false;
      }
    }, { what: "ssh-agent socket" });
    const add = await new Deno.Command("ssh-add", {
      args: [sshd.userKeyPath],
      env: { SSH_AUTH_SOCK: sock },
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(add.success, new TextDecoder().decode(add.stderr));
    await using conn = await connectSsh(
      await opts(sshd, { privateKey: undefined, agentSocket: sock }),
    );
    const r = await conn.exec("echo via-agent", { signal: AbortSignal.timeout(10_000) });
    assert.equal(r.stdout, "via-agent\n");
  } finally {
    agent.kill("SIGTERM");
    await agent.status;
  }
});

Deno.test({
  name: "ssh: an encrypted key without agent is a clear usage error; no key at all too",
  ignore: !!missing,
}, async () => {
  await using sshd = await startSshd();
  await using dir = await tempDir();
  const k = `${dir.path}/enc`;
  const gen = await new Deno.Command("ssh-keygen", {
    args: ["-q", "-t", "ed25519", "-N", "passphrase", "-f", k],
  }).output();
  assert.ok(gen.success);
  const err = await connectSsh(
    await opts(sshd, { privateKey: await Deno.readTextFile(k), privateKeySource: k }),
  ).catch((e) => e);
  assert.ok(err instanceof SshKeyError, String(err));
  assert.equal(err.exitCode, 2);
  assert.ok(err.message.startsWith(`${k}: `), err.message);
  assert.match(err.message, /ssh-agent/);
  const none = await connectSsh(await opts(sshd, { privateKey: undefined })).catch((e) => e);
  assert.ok(none instanceof SshKeyError, String(none));
  assert.match(none.message, /no key to authenticate with/);
});
