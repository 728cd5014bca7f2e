/**
 * The template parser: actions into a tree of text, actions (pipelines) and `if`/`range`/
 * `with` blocks.
 *
 * @module
 */
import { Lexer, type Tok } from "./template_lexer.ts";

/** One argument of a command: a field chain, a literal or a function name. */
export type Operand =
  | { k: "field"; base: "dot" | "var" | "paren"; varName?: string; pipe?: Pipe; chain: string[] }
  | { k: "lit"; v: unknown }
  | { k: "ident"; name: string };
/** One command of a pipeline. */
export interface Cmd {
  args: Operand[];
}
/** A pipeline, with the variables it declares. */
export interface Pipe {
  decl: string[];
  cmds: Cmd[];
}
/** A node of the template tree. */
export type TNode =
  | { k: "text"; s: string }
  | { k: "action"; pipe: Pipe }
  | { k: "if" | "with"; pipe: Pipe; body: TNode[]; els: TNode[] }
  | { k: "range"; pipe: Pipe; body: TNode[]; els: TNode[] };

/** Parses a template into its tree. */
export class Parser extends Lexer {
  parsePipe(toks: Tok[], allowDecl: boolean): Pipe {
    let p = 0;
    const decl: string[] = [];
    if (allowDecl) {
      const save = p;
      const names: string[] = [];
      while (toks[p]?.t === "var" && (toks[p] as { chain: string[] }).chain.length === 0) {
        names.push((toks[p] as { name: string }).name);
        p++;
        if (toks[p]?.t === ",") p++;
        else break;
      }
      if (names.length && (toks[p]?.t === ":=" || toks[p]?.t === "=")) {
        p++;
        decl.push(...names);
      } else p = save;
    }
    const cmds: Cmd[] = [];
    const parseCmd = (stopParen: boolean): Cmd => {
      const args: Operand[] = [];
      while (p < toks.length) {
        const t = toks[p];
        if (t.t === "|" || (t.t === ")" && stopParen)) break;
        p++;
        switch (t.t) {
          case "field":
            args.push({ k: "field", base: "dot", chain: t.chain });
            break;
          case "var":
            args.push({ k: "field", base: "var", varName: t.name, chain: t.chain });
            break;
          case "str":
          case "num":
            args.push({ k: "lit", v: t.v });
            break;
          case "ident":
            if (t.v === "true" || t.v === "false") args.push({ k: "lit", v: t.v === "true" });
            else if (t.v === "nil") args.push({ k: "lit", v: undefined });
            else args.push({ k: "ident", name: t.v });
            break;
          case "(": {
            const inner: Cmd[] = [parseCmd(true)];
            while (toks[p]?.t === "|") {
              p++;
              inner.push(parseCmd(true));
            }
            const closeTok = toks[p];
            if (closeTok?.t !== ")") this.fail("unclosed (");
            p++;
            args.push({
              k: "field",
              base: "paren",
              pipe: { decl: [], cmds: inner },
              chain: closeTok.chain,
            });
            break;
          }
          default:
            this.fail(`unexpected ${t.t} in command`);
        }
      }
      if (!args.length) this.fail("missing value for command");
      return { args };
    };
    cmds.push(parseCmd(false));
    while (p < toks.length && toks[p].t === "|") {
      p++;
      cmds.push(parseCmd(false));
    }
    if (p < toks.length) this.fail(`unexpected ${toks[p].t} in pipeline`);
    return { decl, cmds };
  }

  /** The template's tree; throws a TemplateError on a syntax error. */
  parse(): TNode[] {
    const items = this.items();
    let idx = 0;
    const list = (ends: string[]): { nodes: TNode[]; end: string; rest: string } => {
      const nodes: TNode[] = [];
      while (idx < items.length) {
        const it = items[idx++];
        if ("text" in it) {
          nodes.push({ k: "text", s: it.text });
          continue;
        }
        const a = it.action.trim();
        if (a.startsWith("/*")) {
          if (!a.endsWith("*/")) this.fail("unclosed comment");
          continue;
        }
        const kw = /^(if|range|with|else|end|define|template|block)\b\s*([\s\S]*)$/.exec(a);
        if (kw) {
          const [, word, rest] = kw;
          if (word === "end" || word === "else") {
            if (!ends.includes(word)) this.fail(`unexpected {{${word}}}`);
            return { nodes, end: word, rest };
          }
          if (word === "define" || word === "template" || word === "block") {
            this.fail(`{{${word}}} is not supported`);
          }
          nodes.push(this.control(word as "if" | "range" | "with", rest, list));
          continue;
        }
        nodes.push({ k: "action", pipe: this.parsePipe(this.lex(a), true) });
      }
      if (ends.length) this.fail("unexpected EOF: missing {{end}}");
      return { nodes, end: "", rest: "" };
    };
    return list([]).nodes;
  }

  control(
    word: "if" | "range" | "with",
    rest: string,
    list: (ends: string[]) => { nodes: TNode[]; end: string; rest: string },
  ): TNode {
    if (!rest.trim()) this.fail(`missing value for ${word}`);
    const pipe = this.parsePipe(this.lex(rest), true);
    const body = list(["end", "else"]);
    let els: TNode[] = [];
    if (body.end === "else") {
      const r = body.rest.trim();
      const chained = /^(if|with)\b\s*([\s\S]*)$/.exec(r);
      if (chained && word !== "range") {
        // {{else if ...}} / {{else with ...}}: nested control sharing the outer {{end}}
        els = [this.control(chained[1] as "if" | "with", chained[2], list)];
      } else {
        if (r) this.fail(`unexpected ${r} after else`);
        els = list(["end"]).nodes;
      }
    }
    return { k: word, pipe, body: body.nodes, els };
  }
}
