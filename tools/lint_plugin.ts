/**
 * The project's own lint rules (`deno lint` loads this file through deno.json):
 *
 * - `gangplank/layers`: a file under `lib/<folder>/` imports only from its own folder and
 *   from folders in lower layers (tools/layers.ts), never from `scripts/` or `tests/`.
 * - `gangplank/lib-effects`: nothing under `lib/` reads `Deno.env`/`Deno.args`, calls
 *   `Deno.exit`, prints with `console`, or touches `process.env`/`process.argv`/
 *   `process.exit`: the scripts do, and pass what lib/ needs in.
 *
 * @module
 */

import { layerOf } from "./layers.ts";

/** `lib/<folder>/...` of a file name, or `undefined` outside lib/. */
function libFolder(file: string): { root: string; folder: string } | undefined {
  const m = /^(.*)\/lib\/([^/]+)\/.+$/.exec(file.replaceAll("\\", "/"));
  return m ? { root: m[1], folder: m[2] } : undefined;
}

/** Where a relative import from `file` points, as a path. */
function resolve(file: string, spec: string): string {
  const parts = file.replaceAll("\\", "/").split("/").slice(0, -1);
  for (const p of spec.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== ".") parts.push(p);
  }
  return parts.join("/");
}

const FORBIDDEN: Record<string, readonly string[]> = {
  Deno: ["env", "args", "exit"],
  process: ["env", "argv", "exit"],
};

const plugin: Deno.lint.Plugin = {
  name: "gangplank",
  rules: {
    layers: {
      create(ctx) {
        const here = libFolder(ctx.filename);
        if (!here) return {};
        const check = (node: Deno.lint.Node, source: string) => {
          if (!source.startsWith(".")) return;
          const target = resolve(ctx.filename, source);
          const rel = target.startsWith(here.root + "/") ? target.slice(here.root.length + 1) : "";
          const [top, folder] = rel.split("/");
          if (top === "scripts" || top === "tests") {
            ctx.report({ node, message: `lib/ must not import from ${top}/ (${source})` });
            return;
          }
          if (top !== "lib" || folder === here.folder) return;
          const from = layerOf(here.folder);
          const to = layerOf(folder);
          if (from === undefined || to === undefined) {
            const missing = from === undefined ? here.folder : folder;
            ctx.report({
              node,
              message: `lib/${missing} has no layer: add it to tools/layers.ts and ARCHITECTURE.md`,
            });
            return;
          }
          if (to >= from) {
            ctx.report({
              node,
              message: `lib/${here.folder} (layer ${from}) must not import lib/${folder} ` +
                `(layer ${to}): imports go only to lower layers (ARCHITECTURE.md)`,
            });
          }
        };
        return {
          ImportDeclaration(node) {
            check(node, node.source.value);
          },
          ExportAllDeclaration(node) {
            check(node, node.source.value);
          },
          ExportNamedDeclaration(node) {
            if (node.source) check(node, node.source.value);
          },
          ImportExpression(node) {
            if (node.source.type === "Literal" && typeof node.source.value === "string") {
              check(node, node.source.value);
            }
          },
        };
      },
    },
    "lib-effects": {
      create(ctx) {
        if (!libFolder(ctx.filename)) return {};
        return {
          MemberExpression(node) {
            if (node.object.type !== "Identifier" || node.property.type !== "Identifier") return;
            const obj = node.object.name;
            const prop = node.property.name;
            if (obj === "console" || FORBIDDEN[obj]?.includes(prop)) {
              ctx.report({
                node,
                message: `${obj}.${prop} in lib/: read the environment, print and exit in ` +
                  `scripts/, and pass what lib/ needs in (a log function, options)`,
              });
            }
          },
        };
      },
    },
  },
};

export default plugin;
