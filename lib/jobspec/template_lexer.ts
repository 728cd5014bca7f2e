/**
 * The template lexer: splits a template into text and actions (honouring `{{-`/`-}}` trim
 * markers and quoted `}}`), and an action into tokens.
 *
 * @module
 */
import { TemplateError } from "./errors.ts";

/** One token of an action. */
export type Tok =
  | { t: "field"; chain: string[] } // .A.B or "." (chain [])
  | { t: "var"; name: string; chain: string[] }
  | { t: "str"; v: string }
  | { t: "num"; v: number }
  | { t: "ident"; v: string }
  | { t: "(" }
  | { t: ")"; chain: string[] }
  | { t: "|" }
  | { t: ":=" }
  | { t: "=" }
  | { t: "," };

/** Text and raw action strings of a template, in order. */
export type Item = { text: string } | { action: string };

/** The lexer; `pos` is where errors are reported (its line number). */
export class Lexer {
  /** Offset errors are reported at. */
  pos = 0;
  /** Lexes `src`. */
  constructor(readonly src: string) {}

  /** Throws a {@link TemplateError} at the current line. */
  fail(msg: string): never {
    const line = this.src.slice(0, this.pos).split("\n").length;
    throw new TemplateError(`template: line ${line}: ${msg}`, this.src);
  }

  /** Splits the source into text and raw action strings, applying trim markers. */
  items(): Item[] {
    const out: Item[] = [];
    const s = this.src;
    let i = 0;
    let trimNext = false;
    while (i < s.length) {
      const open = s.indexOf("{{", i);
      let text = s.slice(i, open < 0 ? s.length : open);
      if (trimNext) text = text.replace(/^\s+/, "");
      trimNext = false;
      if (open < 0) {
        if (text) out.push({ text });
        break;
      }
      let j = open + 2;
      if (s[j] === "-" && /\s/.test(s[j + 1] ?? "")) {
        text = text.replace(/\s+$/, "");
        j += 1;
      }
      if (text) out.push({ text });
      // find the closing braces, skipping quoted strings
      let k = j;
      let close = -1;
      while (k < s.length) {
        const c = s[k];
        if (c === '"' || c === "'") {
          k++;
          while (k < s.length && s[k] !== c) k += s[k] === "\\" ? 2 : 1;
          k++;
        } else if (c === "`") {
          k = s.indexOf("`", k + 1);
          if (k < 0) break;
          k++;
        } else if (c === "/" && s[k + 1] === "*") {
          const end = s.indexOf("*/", k + 2);
          if (end < 0) break;
          k = end + 2;
        } else if (c === "}" && s[k + 1] === "}") {
          close = k;
          break;
        } else k++;
      }
      if (close < 0) {
        this.pos = open;
        this.fail("unclosed action");
      }
      let body = s.slice(j, close);
      if (/\s-$/.test(body)) {
        body = body.slice(0, -1);
        trimNext = true;
      }
      out.push({ action: body });
      i = close + 2;
      this.pos = i;
    }
    return out;
  }

  /** Splits one action into tokens. */
  lex(a: string): Tok[] {
    const toks: Tok[] = [];
    let i = 0;
    const chain = (): string[] => {
      const c: string[] = [];
      while (a[i] === "." && /[A-Za-z_]/.test(a[i + 1] ?? "")) {
        i++;
        const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(a.slice(i))!;
        c.push(m[0]);
        i += m[0].length;
      }
      return c;
    };
    while (i < a.length) {
      const c = a[i];
      if (/\s/.test(c)) {
        i++;
      } else if (c === "/" && a[i + 1] === "*") {
        const end = a.indexOf("*/", i + 2);
        if (end < 0) this.fail("unclosed comment");
        i = end + 2;
      } else if (c === ".") {
        if (/[A-Za-z_]/.test(a[i + 1] ?? "")) toks.push({ t: "field", chain: chain() });
        else {
          i++;
          toks.push({ t: "field", chain: [] });
        }
      } else if (c === "$") {
        const m = /^\$[A-Za-z0-9_]*/.exec(a.slice(i))!;
        i += m[0].length;
        toks.push({ t: "var", name: m[0], chain: chain() });
      } else if (c === '"') {
        let j = i + 1;
        while (j < a.length && a[j] !== '"') j += a[j] === "\\" ? 2 : 1;
        if (j >= a.length) this.fail("unterminated quoted string");
        try {
          toks.push({ t: "str", v: JSON.parse(a.slice(i, j + 1)) });
        } catch {
          this.fail(`bad string ${a.slice(i, j + 1)}`);
        }
        i = j + 1;
      } else if (c === "`") {
        const j = a.indexOf("`", i + 1);
        if (j < 0) this.fail("unterminated raw string");
        toks.push({ t: "str", v: a.slice(i + 1, j) });
        i = j + 1;
      } else if (/[0-9]/.test(c) || ((c === "-" || c === "+") && /[0-9]/.test(a[i + 1] ?? ""))) {
        const m = /^[-+]?(0x[0-9a-fA-F]+|[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)/.exec(a.slice(i))!;
        toks.push({ t: "num", v: Number(m[0]) });
        i += m[0].length;
      } else if (/[A-Za-z_]/.test(c)) {
        const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(a.slice(i))!;
        toks.push({ t: "ident", v: m[0] });
        i += m[0].length;
      } else if (c === "(") {
        toks.push({ t: "(" });
        i++;
      } else if (c === ")") {
        i++;
        toks.push({ t: ")", chain: chain() });
      } else if (c === "|") {
        toks.push({ t: "|" });
        i++;
      } else if (c === ":" && a[i + 1] === "=") {
        toks.push({ t: ":=" });
        i += 2;
      } else if (c === "=") {
        toks.push({ t: "=" });
        i++;
      } else if (c === ",") {
        toks.push({ t: "," });
        i++;
      } else if (c === "[") {
        this.fail('unexpected "[" in action: index with {{index .X 0}}, not .X[0]');
      } else this.fail(`unexpected ${JSON.stringify(c)} in action`);
    }
    return toks;
  }
}
