/**
 * The small amount of XML the relay speaks: escaping and building S3 responses (by hand), and
 * parsing the few request bodies S3 clients send (CompleteMultipartUpload, Delete, Tagging)
 * with npm:fast-xml-parser. Request bodies are size-limited by the server before they reach
 * the parser.
 *
 * @module
 */

import { XMLParser, XMLValidator } from "fast-xml-parser";
import { S3Error } from "./s3_error.ts";

/** The S3 namespace. */
export const S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/";

/** Characters {@link xmlEscape} changes: a string without them is returned as it is. */
// deno-lint-ignore no-control-regex
const NEEDS_ESCAPE = /[&<>"'\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/;

/** Escapes text for XML content and attribute values. */
export function xmlEscape(s: string): string {
  // Most keys and values need nothing: a listing escapes thousands of them per page.
  if (!NEEDS_ESCAPE.test(s)) return s;
  // Characters XML 1.0 cannot carry at all become U+FFFD.
  // deno-lint-ignore no-control-regex
  s = s.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/g, "\ufffd");
  return s.replace(
    /[&<>"']/g,
    (c) =>
      c === "&"
        ? "&amp;"
        : c === "<"
        ? "&lt;"
        : c === ">"
        ? "&gt;"
        : c === '"'
        ? "&quot;"
        : "&apos;",
  );
}

/** Markup already rendered (by {@link xmlElement}), placed in a document as it is. */
export class XmlRaw {
  constructor(readonly markup: string) {}
}

/** A tree of elements: a string is text content, an array repeats the element. */
export type XmlValue = string | number | boolean | undefined | XmlRaw | XmlNode | XmlNode[];
/** An element's children by name. */
export interface XmlNode {
  [name: string]: XmlValue | XmlValue[];
}

function render(name: string, v: XmlValue | XmlValue[]): string {
  if (v === undefined) return "";
  if (v instanceof XmlRaw) return v.markup;
  if (Array.isArray(v)) return v.map((x) => render(name, x)).join("");
  if (typeof v === "object") {
    let inner = "";
    for (const [k, c] of Object.entries(v)) inner += render(k, c);
    return `<${name}>${inner}</${name}>`;
  }
  return `<${name}>${xmlEscape(String(v))}</${name}>`;
}

/** Renders one element (text escaped), e.g. to collect many as {@link XmlRaw}. */
export const xmlElement: (name: string, value: XmlValue) => string = render;

/** Renders a full S3 XML document with the S3 namespace on the root element. */
export function xmlDocument(root: string, body: XmlNode): string {
  let inner = "";
  for (const [k, c] of Object.entries(body)) inner += render(k, c);
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${S3_NS}">${inner}</${root}>`;
}

/** An S3 error document. */
export function errorDocument(
  code: string,
  message: string,
  resource: string,
  requestId: string,
): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n` +
    render("Error", { Code: code, Message: message, Resource: resource, RequestId: requestId });
}

/** A parsed request element: child elements by local name (namespace prefixes dropped). */
export interface XmlElement {
  [name: string]: (XmlElement | string)[];
}

const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  htmlEntities: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  isArray: () => true,
});

function malformed(): S3Error {
  return new S3Error(
    400,
    "MalformedXML",
    "The XML you provided was not well-formed or did not validate against our published schema",
  );
}

/**
 * Parses an S3 request body whose root element must be `root`; throws 400 MalformedXML for
 * anything that is not well-formed XML with that root (never an internal error).
 */
export function parseXmlBody(body: string, root: string): XmlElement {
  if (XMLValidator.validate(body) !== true) throw malformed();
  // Character references must name XML characters (the parser would keep `&#x110000;` as text).
  for (const m of body.matchAll(/&#(x[0-9a-fA-F]+|[0-9]+);/g)) {
    const n = m[1][0] === "x" ? parseInt(m[1].slice(1), 16) : parseInt(m[1], 10);
    const ok = n === 0x9 || n === 0xa || n === 0xd || (n >= 0x20 && n <= 0xd7ff) ||
      (n >= 0xe000 && n <= 0xfffd) || (n >= 0x10000 && n <= 0x10ffff);
    if (!ok) throw malformed();
  }
  let doc: XmlElement;
  try {
    doc = parser.parse(body) as XmlElement;
  } catch {
    throw malformed();
  }
  const top = doc[root]?.[0];
  if (top === undefined) throw malformed();
  return typeof top === "string" ? {} : top;
}

/** The child elements named `name` (elements only; a text-only child counts as empty). */
export function childElements(el: XmlElement, name: string): XmlElement[] {
  return (el[name] ?? []).map((c) => (typeof c === "string" ? {} : c));
}

/** The text of the first child named `name` (`""` for an empty element), or undefined. */
export function childText(el: XmlElement, name: string): string | undefined {
  const c = el[name]?.[0];
  if (c === undefined) return undefined;
  if (typeof c === "string") return c;
  const t = (c as Record<string, unknown>)["#text"];
  if (t === undefined) return Object.keys(c).length === 0 ? "" : undefined;
  return Array.isArray(t) ? t.join("") : String(t);
}
