/** Helpers shared by the archive tests: building trees and comparing them. */
import { posix } from "node:path";
import { createGzip } from "node:zlib";
import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import tarStream from "tar-stream";

export type HostileEntry = Partial<tarStream.Header> & { name: string; body?: string };

/** Writes a .tar.gz built entry by entry from hand-made headers (no validation at all). */
export async function handTarGz(dest: string, entries: HostileEntry[]): Promise<void> {
  const pack = tarStream.pack();
  const done = pipeline(pack, createGzip(), createWriteStream(dest));
  for (const e of entries) {
    const { body, ...header } = e;
    await new Promise<void>((resolve, reject) => {
      if (body !== undefined) {
        pack.entry(header, body, (err) => (err ? reject(err) : resolve()));
      } else {
        const sink = pack.entry({ size: 0, ...header }, (err) => (err ? reject(err) : resolve()));
        if ((header.type ?? "file") === "file") sink.end(undefined);
      }
    });
  }
  pack.finalize();
  await done;
}

/** A description of a tree: path -> kind, mode, content/target, mtime (seconds). */
export interface TreeEntry {
  kind: "file" | "dir" | "symlink";
  mode?: number;
  content?: string;
  target?: string;
  mtime?: number;
  ino?: number;
}

/** Reads a whole tree below `root` (sorted, relative paths). */
export async function readTree(root: string): Promise<Record<string, TreeEntry>> {
  const out: Record<string, TreeEntry> = {};
  const walk = async (rel: string) => {
    const dir = rel ? posix.join(root, rel) : root;
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    names.sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const p = posix.join(root, r);
      const st = await Deno.lstat(p);
      const mtime = Math.floor((st.mtime?.getTime() ?? 0) / 1000);
      if (st.isSymlink) {
        out[r] = { kind: "symlink", target: await Deno.readLink(p) };
      } else if (st.isDirectory) {
        out[r] = { kind: "dir", mode: st.mode! & 0o7777, mtime };
        await walk(r);
      } else {
        out[r] = {
          kind: "file",
          mode: st.mode! & 0o7777,
          content: await Deno.readTextFile(p),
          mtime,
          ino: st.ino ?? undefined,
        };
      }
    }
  };
  await walk("");
  return out;
}

/** Drops inode numbers (they differ between copies) but keeps which files share one. */
export function normalizeTree(t: Record<string, TreeEntry>): Record<string, TreeEntry> {
  const groups = new Map<number, string>();
  const out: Record<string, TreeEntry> = {};
  for (const [k, v] of Object.entries(t)) {
    const { ino, ...rest } = v;
    const copy: TreeEntry & { linkedTo?: string } = { ...rest };
    if (ino !== undefined) {
      const first = groups.get(ino);
      if (first !== undefined) copy.linkedTo = first;
      else groups.set(ino, k);
    }
    out[k] = copy;
  }
  return out;
}

/**
 * A sample tree: nested dirs with various modes, an executable, a read-only file, an empty
 * file, a relative symlink to a file and one to a directory, a hard link, a long name.
 */
export async function makeSampleTree(root: string): Promise<void> {
  const t0 = new Date("2021-03-04T05:06:07Z");
  await Deno.mkdir(`${root}/a/b/c`, { recursive: true });
  await Deno.mkdir(`${root}/private`, { mode: 0o700 });
  await Deno.chmod(`${root}/private`, 0o700);
  await Deno.writeTextFile(`${root}/a/hello.txt`, "hello\n");
  await Deno.writeTextFile(`${root}/a/b/run.sh`, "#!/bin/sh\necho hi\n");
  await Deno.chmod(`${root}/a/b/run.sh`, 0o755);
  await Deno.writeTextFile(`${root}/a/b/c/ro.txt`, "read only\n");
  await Deno.chmod(`${root}/a/b/c/ro.txt`, 0o444);
  await Deno.writeTextFile(`${root}/private/secret`, "s3cr3t");
  await Deno.chmod(`${root}/private/secret`, 0o600);
  await Deno.writeTextFile(`${root}/empty`, "");
  await Deno.chmod(`${root}/empty`, 0o640);
  await Deno.symlink("a/hello.txt", `${root}/link-to-file`);
  await Deno.symlink("../a/b", `${root}/private/link-to-dir`);
  await Deno.link(`${root}/a/hello.txt`, `${root}/a/b/hardlink.txt`);
  const long = `${"d".repeat(90)}/${"e".repeat(90)}/${"f".repeat(120)}.txt`;
  await Deno.mkdir(posix.dirname(`${root}/${long}`), { recursive: true });
  await Deno.writeTextFile(`${root}/${long}`, "long\n");
  for (const p of ["a/hello.txt", "a/b/run.sh", "a/b/c/ro.txt", "private/secret", "empty", long]) {
    await Deno.utime(`${root}/${p}`, t0, t0);
  }
  for (const p of ["a/b/c", "a/b", "a", "private", posix.dirname(long), "d".repeat(90)]) {
    await Deno.utime(`${root}/${p}`, t0, t0);
  }
}

/** Names of the entries directly in `dir` (sorted). */
export async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}
