import assert from "node:assert/strict";
import { xmlDocument, xmlElement, xmlEscape, XmlRaw } from "../../lib/relay/xml.ts";

Deno.test("xmlEscape escapes markup and replaces characters XML cannot carry; plain text is unchanged", () => {
  assert.equal(xmlEscape("builds/x86_64/meta.json"), "builds/x86_64/meta.json");
  assert.equal(xmlEscape(`a&b<c>d"e'f`), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
  assert.equal(xmlEscape("a\x01b\x1fc\uffffd\tok\n"), "a\ufffdb\ufffdc\ufffdd\tok\n");
  assert.equal(xmlEscape("é\u{1F600}"), "é\u{1F600}");
});

Deno.test("xmlDocument places XmlRaw markup as it is and escapes everything else", () => {
  const raw = new XmlRaw(
    xmlElement("Contents", { Key: "a&b" }) + "<Contents><Key>c</Key></Contents>",
  );
  const doc = xmlDocument("ListBucketResult", { Name: "<b>", Contents: raw, IsTruncated: false });
  assert.match(doc, /<Name>&lt;b&gt;<\/Name>/);
  assert.match(
    doc,
    /<Contents><Key>a&amp;b<\/Key><\/Contents><Contents><Key>c<\/Key><\/Contents><IsTruncated>false<\/IsTruncated>/,
  );
});
