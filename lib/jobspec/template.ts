/**
 * Command templating: a plain-text subset of Go's text/template over
 * `{ JobSpec, Meta }`, using Gangplank's Go field names (`{{.JobSpec.Recipe.GitRef}}`,
 * `{{.Meta.BuildID}}`). Unlike Gangplank (html/template) nothing is HTML-escaped, and text
 * outside `{{ }}` (heredocs, `<file` redirects) is copied verbatim.
 *
 * Supported: field chains, `$` and `$var`, string/raw/number/bool/nil literals, parentheses,
 * pipelines (`|`), `{{-`/`-}}` trimming, comments, `if`/`else if`/`else`, `range` (with
 * `$i, $e :=`), `with`, and the functions `index`, `printf`, `print`, `println`, `len`,
 * `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `and`, `or`, `not`.
 *
 * The work is split in three: `template_lexer.ts`, `template_parser.ts` and
 * `template_eval.ts` (with `template_fields.ts`, the field names it resolves).
 *
 * @module
 */
import type { JobSpec } from "./types.ts";
import { Parser } from "./template_parser.ts";
import { Exec } from "./template_eval.ts";

/** Data a command template is rendered against. `Meta` is the parsed `meta.json`, if any. */
export interface RenderData {
  /** `.JobSpec` in templates. */
  JobSpec: JobSpec;
  /** `.Meta` in templates: the latest build's meta.json. */
  Meta?: unknown;
}

/**
 * Renders one command template against `{ JobSpec, Meta }` as plain text.
 *
 * @throws {TemplateError} on syntax errors, unknown fields or functions, and when `.Meta` is
 *   used but no meta.json was given.
 * @example
 * renderTemplate("cosa init {{.JobSpec.Recipe.GitURL}}", { JobSpec: spec })
 */
export function renderTemplate(template: string, data: RenderData): string {
  if (!template.includes("{{")) return template;
  const nodes = new Parser(template).parse();
  const ex = new Exec(template, { v: data, t: { kind: "root" } });
  ex.run(nodes, ex.root);
  return ex.out;
}

/**
 * Checks a template's syntax without data (what can be checked before a run).
 *
 * @throws {TemplateError}
 */
export function checkTemplateSyntax(template: string): void {
  if (template.includes("{{")) new Parser(template).parse();
}
