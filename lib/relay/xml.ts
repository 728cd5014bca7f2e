/**
 * The small amount of XML the relay speaks: escaping, building S3 responses, and extracting
 * elements from the few request bodies S3 clients send (CompleteMultipartUpload, Delete,
 * Tagging). Request bodies are size-limited by the server before they reach this parser.
 *
 * @module
 */

/** The S3 namespace. */
export const S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/";

/** Escapes text for XML content and attribute values. */
export function xmlEscape(s: string): string {
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

/** Decodes the predefined entities and numeric character references. */
export function xmlUnescape(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_m, e: string) => {
    if (e[0] === "#") {
      const n = e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return String.fromCodePoint(n);
    }
    return { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" }[e] as string;
  });
}

/** A tree of elements: a string is text content, an array repeats the element. */
export type XmlValue = string | number | boolean | undefined | XmlNode | XmlNode[];
/** An element's children by name. */
export interface XmlNode {
  [name: string]: XmlValue | XmlValue[];
}

function render(name: string, v: XmlValue | XmlValue[]): string {
  if (v === undefined) return "";
  if (Array.isArray(v)) return v.map((x) => render(name, x)).join("");
  if (typeof v === "object") {
    let inner = "";
    for (const [k, c] of Object.entries(v)) inner += render(k, c);
    return `<${name}>${inner}</${name}>`;
  }
  return `<${name}>${xmlEscape(String(v))}</${name}>`;
}

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

/**
 * Returns the inner text of every `<name>...</name>` element (non-nested, namespace prefixes
 * allowed), in document order.
 */
export function elements(xml: string, name: string): string[] {
  const re = new RegExp(
    `<(?:[A-Za-z0-9_]+:)?${name}(?:\\s[^>]*)?>([\\s\\S]*?)</(?:[A-Za-z0-9_]+:)?${name}\\s*>`,
    "g",
  );
  const out: string[] = [];
  for (const m of xml.matchAll(re)) out.push(m[1]);
  return out;
}

/** The unescaped, trimmed text of the first `<name>` element, or undefined. */
export function text(xml: string, name: string): string | undefined {
  const e = elements(xml, name)[0];
  return e === undefined ? undefined : xmlUnescape(e.trim());
}
