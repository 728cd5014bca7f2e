/**
 * `recipe.repos` entries: file naming and writing `<dir>/<name or sha256>.repo`.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { link, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { RepoError } from "./errors.ts";
import type { Repo } from "./types.ts";

/** Why `name` cannot name a repo file (it would escape the config dir), or undefined. */
export function checkRepoName(name: string): string | undefined {
  if (name.trim() === "") return "repo name must not be empty";
  if (name.includes("/") || name.includes("\\")) return "repo name must not contain /";
  if (name === "." || name === ".." || name.includes("..")) return "repo name must not contain ..";
  if (name.includes("\0")) return "repo name must not contain NUL";
  return undefined;
}

/**
 * File name of a repo: `<name>.repo` (spaces kept), else `<sha256 hex of url or inline>.repo`.
 *
 * @throws {RepoError} for an unsafe name or a repo with neither url nor inline.
 */
export function repoFileName(repo: Repo): string {
  if (repo.name !== undefined && repo.name !== "") {
    const problem = checkRepoName(repo.name);
    if (problem) throw new RepoError(problem);
    return `${repo.name}.repo`;
  }
  const content = repo.url ?? repo.inline;
  if (content === undefined) throw new RepoError("repo must be a URL or inline data");
  return `${createHash("sha256").update(content).digest("hex")}.repo`;
}

/** Minimal fetch signature (inject a fake in tests). */
export type FetchLike = (url: string, init: { signal?: AbortSignal }) => Promise<Response>;

/**
 * Writes a repo file into `dir` and returns its path. The file is created exclusively (an
 * existing file is an error) with mode 0644 and written atomically: on any failure nothing is
 * left behind (Gangplank left an empty file). HTTP 204, 206 and any status ≥ 400 fail;
 * empty content fails.
 *
 * @throws {RepoError} carrying the path it would have written.
 */
export async function writeRepoFile(
  repo: Repo,
  dir: string,
  opts: { fetch?: FetchLike; signal?: AbortSignal } = {},
): Promise<string> {
  const path = join(dir, repoFileName(repo));
  let body: string;
  if (repo.url !== undefined) {
    const res = await (opts.fetch ?? fetch)(repo.url, { signal: opts.signal });
    body = await res.text();
    if (res.status === 204) throw new RepoError(`${repo.url}: repo content is empty`, path);
    if (res.status === 206) throw new RepoError(`${repo.url}: repo content is truncated`, path);
    if (res.status >= 400) throw new RepoError(`${repo.url}: HTTP status ${res.status}`, path);
  } else if (repo.inline !== undefined) {
    body = repo.inline;
  } else {
    throw new RepoError("repo must be a URL or inline data", path);
  }
  if (body.length === 0) throw new RepoError("No remote content fetched", path);
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const fh = await open(tmp, "wx", 0o644);
  try {
    await fh.writeFile(body);
  } finally {
    await fh.close();
  }
  try {
    // link() fails if `path` exists: an exclusive, atomic create of the complete file.
    await link(tmp, path).catch((e) => {
      throw new RepoError(`${path}: ${(e as Error).message}`, path);
    });
  } finally {
    await rm(tmp, { force: true });
  }
  return path;
}
