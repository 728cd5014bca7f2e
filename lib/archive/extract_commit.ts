/**
 * The last step of an extraction: the staged tree, checked entry by entry, moved into the
 * root (renames; copies across file systems), then directory modes and mtimes applied.
 *
 * @module
 */
import { posix } from "node:path";
import { UnsafeArchiveError } from "./errors.ts";

/** What an entry of the archive is. */
export type Kind = "file" | "dir" | "symlink";
/** An entry staged so far. */
export interface Node {
  /** File, directory or symlink. */
  kind: Kind;
  /** Symlink target, for symlinks. */
  target?: string;
}
/** A directory's mode and mtime, applied once everything is in place. */
export interface DirMeta {
  /** Permission bits. */
  mode: number;
  /** Modification time. */
  mtime: Date;
}

/**
 * Moves the staged tree into `root`: first checks every destination (no symlink or type
 * conflict in the way), then renames, then applies directory modes and mtimes deepest first.
 */
export async function commit(
  staging: string,
  root: string,
  nodes: Map<string, Node>,
  dirMeta: Map<string, DirMeta>,
): Promise<void> {
  type Op = { rel: string; replace: boolean };
  const ops: Op[] = [];
  const created = new Set<string>();
  const plan = async (dir: string) => {
    const names: string[] = [];
    for await (const e of Deno.readDir(dir ? posix.join(staging, dir) : staging)) {
      names.push(e.name);
    }
    names.sort();
    for (const n of names) {
      const rel = dir ? `${dir}/${n}` : n;
      const kind = nodes.get(rel)?.kind;
      let existing: Deno.FileInfo | null = null;
      try {
        existing = await Deno.lstat(posix.join(root, rel));
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      if (kind === "dir") {
        if (existing === null) {
          ops.push({ rel, replace: false });
          for (const k of nodes.keys()) {
            if (k === rel || k.startsWith(rel + "/")) created.add(k);
          }
        } else if (existing.isSymlink) {
          throw new UnsafeArchiveError(rel, "an existing symlink in the root is in the way");
        } else if (!existing.isDirectory) {
          throw new UnsafeArchiveError(rel, "an existing non-directory in the root is in the way");
        } else {
          await plan(rel);
        }
      } else {
        if (existing?.isDirectory) {
          throw new UnsafeArchiveError(rel, "an existing directory in the root is in the way");
        }
        ops.push({ rel, replace: existing !== null });
      }
    }
  };
  await plan("");
  for (const op of ops) {
    await move(posix.join(staging, op.rel), posix.join(root, op.rel));
  }
  const dirs = [...nodes.entries()].filter(([, n]) => n.kind === "dir").map(([k]) => k);
  dirs.sort((a, b) => b.split("/").length - a.split("/").length);
  for (const rel of dirs) {
    const meta = dirMeta.get(rel);
    const p = posix.join(root, rel);
    if (meta) {
      await Deno.chmod(p, meta.mode);
      await Deno.utime(p, meta.mtime, meta.mtime);
    } else if (created.has(rel)) {
      await Deno.chmod(p, 0o755);
    }
  }
}

/**
 * rename(2), falling back to copy + remove across file systems (a mount inside root). Internal
 * (exported for tests, with `rename` as the seam).
 */
export async function move(
  from: string,
  to: string,
  rename: (from: string, to: string) => Promise<void> = Deno.rename,
): Promise<void> {
  try {
    await rename(from, to);
    return;
  } catch (e) {
    if ((e as { code?: string })?.code !== "EXDEV") throw e;
  }
  const st = await Deno.lstat(from);
  if (st.isSymlink) {
    const tmp = `${to}.gp-tmp-${crypto.randomUUID().slice(0, 8)}`;
    await Deno.symlink(await Deno.readLink(from), tmp);
    await Deno.rename(tmp, to);
  } else if (st.isDirectory) {
    await Deno.mkdir(to, { mode: 0o700 });
    for await (const e of Deno.readDir(from)) {
      await move(posix.join(from, e.name), posix.join(to, e.name), rename);
    }
  } else {
    const tmp = `${to}.gp-tmp-${crypto.randomUUID().slice(0, 8)}`;
    await Deno.copyFile(from, tmp);
    await Deno.chmod(tmp, (st.mode ?? 0o644) & 0o1777);
    if (st.mtime) await Deno.utime(tmp, st.mtime, st.mtime);
    await Deno.rename(tmp, to);
  }
  await Deno.remove(from, { recursive: true });
}
