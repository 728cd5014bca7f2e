/**
 * A disposable OpenSSH server for tests: `sshd -D -e -f <config>` on a free loopback port, with
 * a generated host key and user key in a temp dir. It can be killed (with its per-connection
 * children) or frozen mid-test to simulate a dropped or dead connection.
 *
 * @module
 */
import { existsSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { commOf, descendants, type Service, startService } from "./procs.ts";

/** Why sshd tests cannot run here, or `undefined` when they can. */
export function sshdMissing(): string | undefined {
  if (!existsSync("/usr/sbin/sshd")) return "sshd (openssh-server) not installed";
  if (!existsSync("/usr/bin/ssh-keygen")) return "ssh-keygen not installed";
  return undefined;
}

/** A running test sshd. */
export interface TestSshd extends AsyncDisposable {
  host: string;
  port: number;
  dir: string;
  /** Private key authorised for root. */
  userKeyPath: string;
  /** `ssh-ed25519 AAAA...` host public key. */
  hostPublicKey: string;
  /** A known_hosts file with the host key under `[host]:port`. */
  knownHostsPath: string;
  /** The host key's SHA256 fingerprint as printed by `ssh-keygen -lf`. */
  hostFingerprint: string;
  pid: number;
  /** PIDs of sshd's descendants (per-connection processes). */
  descendants(): number[];
  /** Kills sshd and every descendant (SIGKILL): every connection drops at once. */
  killAll(): Promise<void>;
  /**
   * Kills (SIGKILL) only the sshd processes (listener and per-connection), as when sshd dies:
   * commands started over SSH survive and see EOF. Returns the PIDs of those survivors.
   */
  killSshdOnly(): Promise<number[]>;
  /** Stops (SIGSTOP) the per-connection processes: peers see a silent, dead connection. */
  freezeSessions(): void;
}

async function sh(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const descendantsOf = (root: number): number[] => descendants(root).map((p) => p.pid);

function banner(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 1000);
    s.once("data", (d) => {
      clearTimeout(t);
      s.destroy();
      resolve(String(d).startsWith("SSH-2.0"));
    });
    s.once("error", () => {
      clearTimeout(t);
      s.destroy();
      resolve(false);
    });
  });
}

/** Starts sshd on 127.0.0.1:<free port>, authorising a fresh ed25519 key for root. */
export async function startSshd(): Promise<TestSshd> {
  const host = "127.0.0.1";
  const dir = await Deno.makeTempDir({ prefix: "gp-sshd-" });
  await Deno.mkdir("/run/sshd", { recursive: true });
  const hostKey = join(dir, "host_ed25519");
  const userKey = join(dir, "id_ed25519");
  await sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey, "-C", "test-host"]);
  await sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", userKey, "-C", "test-user"]);
  const hostPublicKey = (await Deno.readTextFile(`${hostKey}.pub`)).trim().split(/\s+/)
    .slice(0, 2).join(" ");
  await Deno.copyFile(`${userKey}.pub`, join(dir, "authorized_keys"));
  const hostFingerprint = (await sh("ssh-keygen", ["-l", "-f", `${hostKey}.pub`])).split(/\s+/)[1];
  for (let attempt = 0;; attempt++) {
    const port = await freePort(host);
    const config = join(dir, "sshd_config");
    await Deno.writeTextFile(
      config,
      [
        `Port ${port}`,
        `ListenAddress ${host}`,
        `HostKey ${hostKey}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        "PidFile none",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "AllowTcpForwarding yes",
        "AllowStreamLocalForwarding yes",
        "GatewayPorts no",
        "ClientAliveInterval 0",
        "LogLevel ERROR",
        "",
      ].join("\n"),
    );
    const knownHostsPath = join(dir, "known_hosts");
    await Deno.writeTextFile(knownHostsPath, `[${host}]:${port} ${hostPublicKey}\n`);
    let svc: Service;
    try {
      svc = await startService("/usr/sbin/sshd", {
        args: ["-D", "-e", "-f", config],
        ready: () => banner(host, port),
        timeoutMs: 10_000,
        what: "sshd",
      });
    } catch (e) {
      if (attempt < 3) continue; // the port was taken meanwhile: another one
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
    const child = svc.child;
    const pid = svc.pid;
    const killAll = async () => {
      await svc.stop("SIGKILL");
    };
    return {
      host,
      port,
      dir,
      pid,
      userKeyPath: userKey,
      hostPublicKey,
      knownHostsPath,
      hostFingerprint,
      descendants: () => descendantsOf(pid),
      async killSshdOnly() {
        const all = descendantsOf(pid);
        const sshds = all.filter((p) => commOf(p) === "sshd");
        const others = all.filter((p) => !sshds.includes(p));
        for (const p of sshds.reverse()) {
          try {
            Deno.kill(p, "SIGKILL");
          } catch { /* gone */ }
        }
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        await child.status;
        return others;
      },
      killAll,
      freezeSessions() {
        for (const p of descendantsOf(pid)) {
          try {
            Deno.kill(p, "SIGSTOP");
          } catch { /* gone */ }
        }
      },
      async [Symbol.asyncDispose]() {
        await killAll();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
  }
}
