/**
 * The template evaluator: runs a parsed template against `{ JobSpec, Meta }`, with Go's
 * text/template semantics for fields, variables, pipelines, control blocks and functions.
 *
 * @module
 */
import { MetaUnavailableError, TemplateError } from "./errors.ts";
import { JOBSPEC_TYPE } from "./types.ts";
import type { RenderData } from "./template.ts";
import type { Operand, Pipe, TNode } from "./template_parser.ts";
import { GENERIC_TY, lookupTable, META_TY, norm, type TV, type Ty } from "./template_fields.ts";

function zeroString(t: Ty): string {
  switch (t.kind) {
    case "string":
      return "";
    case "int":
    case "number":
      return "0";
    case "bool":
      return "false";
    case "list":
      return "[]";
    default:
      return "<no value>";
  }
}

/** Go's %v formatting of a value. */
function fmtValue(v: unknown): string {
  if (v === undefined || v === null) return "<nil>";
  if (Array.isArray(v)) return `[${v.map(fmtValue).join(" ")}]`;
  if (typeof v === "object") {
    const keys = Object.keys(v as object).sort();
    return `map[${
      keys.map((k) => `${k}:${fmtValue((v as Record<string, unknown>)[k])}`).join(" ")
    }]`;
  }
  return String(v);
}

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v as object).length > 0;
  return true;
}

const MAX_OUTPUT = 16 * 1024 * 1024;

/** One evaluation: the output so far and the variables in scope. */
export class Exec {
  out = "";
  vars: { name: string; tv: TV }[];
  steps = 0;
  constructor(readonly src: string, readonly root: TV) {
    this.vars = [{ name: "$", tv: root }];
  }

  fail(msg: string): never {
    throw new TemplateError(`template: ${msg}`, this.src);
  }

  field(tv: TV, name: string, path: string): TV {
    const t = tv.t;
    if (t.kind === "root") {
      if (name === "JobSpec") return { v: (tv.v as RenderData).JobSpec, t: JOBSPEC_TYPE };
      if (name === "Meta") {
        const m = (tv.v as RenderData).Meta;
        if (m === undefined || m === null) {
          throw new MetaUnavailableError(
            "template: .Meta is not available (no meta.json was read)",
            this.src,
          );
        }
        return { v: m, t: META_TY };
      }
      this.fail(`can't evaluate field ${name} in type RenderData`);
    }
    if (t.kind === "object") {
      const fd = t.fields.find((f) => f.go === name) ??
        t.fields.find((f) => f.go.toLowerCase() === name.toLowerCase());
      if (!fd) this.fail(`can't evaluate field ${name} in type ${t.name}`);
      const obj = (tv.v ?? {}) as Record<string, unknown>;
      return { v: obj[fd.key], t: fd.type };
    }
    if (t.kind === "meta") {
      if (tv.v === undefined || tv.v === null) {
        this.fail(`nil pointer evaluating ${path}.${name}`);
      }
      if (typeof tv.v !== "object" || Array.isArray(tv.v)) {
        this.fail(`can't evaluate field ${name} in a non-struct value at ${path}`);
      }
      const obj = tv.v as Record<string, unknown>;
      let key = t.table ? lookupTable(t.table, name) : undefined;
      if (key === undefined) key = Object.keys(obj).find((k) => norm(k) === norm(name));
      if (key === undefined) {
        if (t.table) this.fail(`can't evaluate field ${name} in type ${t.name}`);
        return { v: undefined, t: GENERIC_TY };
      }
      return { v: obj[key], t: t.children?.[key] ?? GENERIC_TY };
    }
    if (t.kind === "any") {
      const obj = tv.v as Record<string, unknown> | undefined;
      if (obj && typeof obj === "object" && Object.hasOwn(obj, name)) return { v: obj[name], t };
      this.fail(`can't evaluate field ${name} at ${path}`);
    }
    this.fail(`can't evaluate field ${name} in type ${t.kind} at ${path}`);
  }

  chain(tv: TV, chain: string[], start: string): TV {
    let cur = tv;
    let path = start;
    for (const name of chain) {
      cur = this.field(cur, name, path);
      path = `${path}.${name}`;
    }
    return cur;
  }

  varLookup(name: string): TV {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      if (this.vars[i].name === name) return this.vars[i].tv;
    }
    this.fail(`undefined variable: ${name}`);
  }

  operand(op: Operand, dot: TV): TV {
    switch (op.k) {
      case "lit":
        return { v: op.v, t: { kind: "any" } };
      case "ident":
        return this.call(op.name, [], dot, undefined);
      case "field": {
        const base = op.base === "dot"
          ? dot
          : op.base === "var"
          ? this.varLookup(op.varName!)
          : this.pipe(op.pipe!, dot);
        return this.chain(base, op.chain, op.base === "var" ? op.varName! : "");
      }
    }
  }

  call(name: string, argOps: Operand[], dot: TV, piped: TV | undefined): TV {
    const any = (v: unknown): TV => ({ v, t: { kind: "any" } });
    if (name === "and" || name === "or") {
      // short-circuit like Go 1.18+
      const ops = [...argOps];
      let last: TV | undefined;
      for (const op of ops) {
        last = this.operand(op, dot);
        if (name === "and" ? !truthy(last.v) : truthy(last.v)) return last;
      }
      if (piped) return piped;
      if (!last) this.fail(`wrong number of args for ${name}`);
      return last;
    }
    const args = argOps.map((o) => this.operand(o, dot));
    if (piped) args.push(piped);
    const vals = args.map((a) => a.v);
    const need = (n: number) => {
      if (vals.length < n) this.fail(`wrong number of args for ${name}: want at least ${n}`);
    };
    switch (name) {
      case "index": {
        need(1);
        let cur = args[0];
        for (const k of vals.slice(1)) {
          if (Array.isArray(cur.v)) {
            if (typeof k !== "number" || !Number.isInteger(k)) {
              this.fail("index: non-integer index");
            }
            if (k < 0 || k >= cur.v.length) this.fail(`index out of range: ${k}`);
            const t = cur.t.kind === "list" ? cur.t.of : { kind: "any" } as const;
            cur = { v: cur.v[k], t };
          } else if (cur.v && typeof cur.v === "object") {
            // Own data only: "constructor", "__proto__", "toString"... are not keys of the data.
            const obj = cur.v as Record<string, unknown>;
            const key = String(k);
            cur = any(Object.hasOwn(obj, key) ? obj[key] : undefined);
          } else if (typeof cur.v === "string") {
            if (typeof k !== "number" || k < 0 || k >= cur.v.length) {
              this.fail(`index out of range: ${k}`);
            }
            cur = any(cur.v.charCodeAt(k));
          } else {
            if (cur.t.kind === "list") this.fail(`index out of range: ${k}`);
            this.fail(`can't index item of type ${typeof cur.v}`);
          }
        }
        return cur;
      }
      case "len": {
        need(1);
        const v = vals[0];
        if (Array.isArray(v) || typeof v === "string") return any(v.length);
        if (v && typeof v === "object") return any(Object.keys(v).length);
        if (v === undefined && (args[0].t.kind === "list" || args[0].t.kind === "string")) {
          return any(0);
        }
        this.fail(`len of ${typeof v}`);
        break;
      }
      case "printf":
        need(1);
        return any(sprintf(String(vals[0]), vals.slice(1), args.slice(1)));
      case "print":
        return any(goPrint(args));
      case "println":
        return any(args.map(display).join(" ") + "\n");
      case "not":
        need(1);
        return any(!truthy(vals[0]));
      case "eq":
        need(2);
        return any(vals.slice(1).some((v) => v === vals[0]));
      case "ne":
        need(2);
        return any(vals[0] !== vals[1]);
      case "lt":
      case "le":
      case "gt":
      case "ge": {
        need(2);
        const [a, b] = vals as [number | string, number | string];
        if (typeof a !== typeof b || (typeof a !== "number" && typeof a !== "string")) {
          this.fail(`${name}: incompatible types for comparison`);
        }
        return any(name === "lt" ? a < b : name === "le" ? a <= b : name === "gt" ? a > b : a >= b);
      }
    }
    this.fail(`function "${name}" not defined`);
  }

  pipe(p: Pipe, dot: TV): TV {
    let cur: TV | undefined;
    for (const c of p.cmds) {
      const first = c.args[0];
      if (first.k === "ident") cur = this.call(first.name, c.args.slice(1), dot, cur);
      else {
        if (c.args.length > 1) this.fail("can't give argument to non-function");
        if (cur) this.fail("can't give argument to non-function");
        cur = this.operand(first, dot);
      }
    }
    return cur!;
  }

  run(nodes: TNode[], dot: TV) {
    for (const n of nodes) {
      if (++this.steps > 1_000_000) this.fail("template execution too long");
      switch (n.k) {
        case "text":
          this.out += n.s;
          break;
        case "action": {
          const v = this.pipe(n.pipe, dot);
          if (n.pipe.decl.length) this.vars.push({ name: n.pipe.decl[0], tv: v });
          else this.out += display(v);
          break;
        }
        case "if":
        case "with": {
          const mark = this.vars.length;
          const v = this.pipe(n.pipe, dot);
          if (n.pipe.decl.length) this.vars.push({ name: n.pipe.decl[0], tv: v });
          if (truthy(v.v)) this.run(n.body, n.k === "with" ? v : dot);
          else this.run(n.els, dot);
          this.vars.length = mark;
          break;
        }
        case "range": {
          const mark = this.vars.length;
          const v = this.pipe(n.pipe, dot);
          let entries: [TV, TV][] = [];
          const any = (x: unknown): TV => ({ v: x, t: { kind: "any" } });
          if (Array.isArray(v.v)) {
            const et: Ty = v.t.kind === "list" ? v.t.of : { kind: "any" };
            entries = v.v.map((x, i) => [any(i), { v: x, t: et }]);
          } else if (v.v && typeof v.v === "object") {
            entries = Object.keys(v.v).sort().map((k) => [
              any(k),
              any((v.v as Record<string, unknown>)[k]),
            ]);
          } else if (typeof v.v === "number" && Number.isInteger(v.v)) {
            entries = Array.from({ length: Math.max(0, Math.min(v.v, 1_000_000)) }, (_, i) => [
              any(i),
              any(i),
            ]);
          } else if (v.v !== undefined && v.v !== null) {
            this.fail(`range can't iterate over ${fmtValue(v.v)}`);
          }
          if (!entries.length) this.run(n.els, dot);
          for (const [k, e] of entries) {
            const inner = this.vars.length;
            if (n.pipe.decl.length === 1) this.vars.push({ name: n.pipe.decl[0], tv: e });
            if (n.pipe.decl.length >= 2) {
              this.vars.push({ name: n.pipe.decl[0], tv: k }, { name: n.pipe.decl[1], tv: e });
            }
            this.run(n.body, e);
            this.vars.length = inner;
          }
          this.vars.length = mark;
          break;
        }
      }
      if (this.out.length > MAX_OUTPUT) this.fail("template output too large");
    }
  }
}

function display(tv: TV): string {
  if (tv.v === undefined) return zeroString(tv.t);
  return fmtValue(tv.v);
}

function goPrint(args: TV[]): string {
  let s = "";
  args.forEach((a, i) => {
    const isStr = typeof a.v === "string";
    if (i > 0 && !isStr && typeof args[i - 1].v !== "string") s += " ";
    s += display(a);
  });
  return s;
}

function sprintf(format: string, vals: unknown[], tvs: TV[]): string {
  let i = 0;
  return format.replace(
    /%([-+# 0]*)(\d*)(?:\.(\d+))?([a-zA-Z%])/g,
    (m, _flags, width, prec, verb) => {
      if (verb === "%") return "%";
      if (i >= vals.length) return `%!${verb}(MISSING)`;
      const v = vals[i];
      const tv = tvs[i++];
      let s: string;
      switch (verb) {
        case "s":
        case "v":
          s = display(tv);
          break;
        case "q":
          s = JSON.stringify(typeof v === "string" ? v : display(tv));
          break;
        case "d":
          s = typeof v === "number" ? String(Math.trunc(v)) : `%!d(${display(tv)})`;
          break;
        case "f":
          s = typeof v === "number" ? v.toFixed(prec ? Number(prec) : 6) : `%!f(${display(tv)})`;
          break;
        case "x":
          s = typeof v === "number"
            ? Math.trunc(v).toString(16)
            : [...new TextEncoder().encode(String(v))].map((b) => b.toString(16).padStart(2, "0"))
              .join("");
          break;
        case "t":
          s = String(!!v);
          break;
        default:
          return m;
      }
      if (width && s.length < Number(width)) s = s.padStart(Number(width));
      return s;
    },
  );
}
