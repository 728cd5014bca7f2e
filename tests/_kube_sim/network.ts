/**
 * Pod networking of the simulated kubelet: every pod gets its own network namespace with one
 * end of a veth pair (`eth0`, an address in `10.213.<k>.0/24`) whose other end sits on a bridge
 * this server creates (`ksb<k>`, `10.213.<k>.1`, the node's address). A pod's loopback is its
 * own: a worker dialing `127.0.0.1` for a relay on the host fails, as on a real cluster. The
 * API server also listens on the node address, so in-cluster clients reach it.
 *
 * Only the bridge, the veth pairs and the namespaces made here are touched; all are removed on
 * `close()` (a pod's on its end). Needs root and `ip` (iproute2); without them
 * {@link PodNetwork.create} answers undefined and pods share the host's network.
 *
 * @module
 */

/** Where a pod's network lives. */
export interface PodAddress {
  /** The pod's IP (`status.podIP`). */
  ip: string;
  /** Path of its network namespace (for `nsenter --net=` / `podman --network ns:`). */
  netnsPath: string;
}

async function ip(args: string[], stdin?: string): Promise<{ ok: boolean; err: string }> {
  const child = new Deno.Command("ip", {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  return { ok: out.success, err: new TextDecoder().decode(out.stderr).trim() };
}

/** Every node address a server of this module can have (for the TLS certificate). */
export const NODE_ADDRESSES: readonly string[] = Array.from(
  { length: 254 },
  (_, i) => `10.213.${i + 1}.1`,
);

/** One bridge and the pods' namespaces on it. */
export class PodNetwork {
  /** The node's address on the pod network (`10.213.<k>.1`). */
  readonly nodeIP: string;
  readonly #k: number;
  readonly #bridge: string;
  readonly #pods = new Map<string, { n: number; ns: string }>();
  /** Numbers of pods whose namespace and veth are being removed. */
  readonly #releasing = new Set<number>();
  #closed = false;

  private constructor(k: number) {
    this.#k = k;
    this.#bridge = `ksb${k}`;
    this.nodeIP = `10.213.${k}.1`;
  }

  /** Makes a fresh bridge (a free `k`), or undefined without root or `ip`. */
  static async create(log: (msg: string) => void = () => {}): Promise<PodNetwork | undefined> {
    if (Deno.uid() !== 0) return undefined;
    try {
      if (!(await ip(["-V"])).ok) return undefined;
    } catch {
      return undefined;
    }
    const tried = new Set<number>();
    for (let attempt = 0; attempt < 40; attempt++) {
      const k = 1 + Math.floor(Math.random() * 254);
      if (tried.has(k)) continue;
      tried.add(k);
      const net = new PodNetwork(k);
      // `link add` fails when another server (any process) holds this bridge name.
      const add = await ip(["link", "add", net.#bridge, "type", "bridge"]);
      if (!add.ok) continue;
      const up = await ip(
        ["-batch", "-"],
        `addr add ${net.nodeIP}/24 dev ${net.#bridge}\nlink set ${net.#bridge} up\n`,
      );
      if (!up.ok) {
        await ip(["link", "del", net.#bridge]);
        log(`pod network: cannot bring up ${net.#bridge}: ${up.err}`);
        continue;
      }
      return net;
    }
    log("pod network: no free 10.213.<k>.0/24 bridge; pods share the host network");
    return undefined;
  }

  /** Creates the pod's namespace and veth pair; its address. */
  async add(uid: string): Promise<PodAddress> {
    if (this.#closed) throw new Error("pod network closed");
    const used = new Set([...this.#pods.values()].map((p) => p.n).concat([...this.#releasing]));
    let n = 2;
    while (used.has(n) && n < 255) n++;
    if (n >= 255) throw new Error("pod network full (253 pods)");
    const ns = `ks${this.#k}-${n}-${uid.slice(0, 8)}`;
    const hostEnd = `ksv${this.#k}x${n}`;
    const podEnd = `ksp${this.#k}x${n}`;
    this.#pods.set(uid, { n, ns });
    const podIP = `10.213.${this.#k}.${n}`;
    const host = await ip(
      ["-batch", "-"],
      [
        `netns add ${ns}`,
        `link add ${hostEnd} type veth peer name ${podEnd}`,
        `link set ${podEnd} netns ${ns}`,
        `link set ${hostEnd} master ${this.#bridge}`,
        `link set ${hostEnd} up`,
        "",
      ].join("\n"),
    );
    const inner = host.ok
      ? await ip(
        ["-n", ns, "-batch", "-"],
        [
          `link set ${podEnd} name eth0`,
          `addr add ${podIP}/24 dev eth0`,
          "link set eth0 up",
          "link set lo up",
          `route add default via ${this.nodeIP}`,
          "",
        ].join("\n"),
      )
      : host;
    if (!inner.ok) {
      await this.remove(uid);
      throw new Error(`pod network: ${inner.err}`);
    }
    return { ip: podIP, netnsPath: `/run/netns/${ns}` };
  }

  /** Removes a pod's namespace (its veth pair goes with it). */
  async remove(uid: string): Promise<void> {
    const p = this.#pods.get(uid);
    if (!p) return;
    this.#pods.delete(uid);
    // The pod's number stays taken until its veth is gone: a pod added meanwhile would get
    // the same interface name and fail with "File exists" (seen as pods left Pending).
    this.#releasing.add(p.n);
    try {
      await ip(["netns", "del", p.ns]);
      await ip(["link", "del", `ksv${this.#k}x${p.n}`]); // normally gone with the namespace
    } finally {
      this.#releasing.delete(p.n);
    }
  }

  /** Removes every pod namespace and the bridge. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const uid of [...this.#pods.keys()]) await this.remove(uid);
    await ip(["link", "del", this.#bridge]);
  }
}
