/**
 * The multipart listings: ListParts (the parts of one upload) and ListMultipartUploads (the
 * uploads in flight in a bucket, with prefix, delimiter and markers).
 *
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { findUpload, readInfo, readParts, visibleTo } from "./server_uploads.ts";
import { uriEncode } from "./sigv4.ts";
import { xmlDocument, type XmlNode } from "./xml.ts";
import { type Ctx, OWNER, quote, type RelayCore, sendXml } from "./server_core.ts";

/** Handlers for ListParts and ListMultipartUploads. */
export function uploadListingHandlers(core: RelayCore) {
  const { store } = core;

  function listParts(ctx: Ctx) {
    const { dir, info, id } = findUpload(store.uploadsDir, ctx);
    const marker = Number(ctx.query.get("part-number-marker") ?? "0") || 0;
    const maxParts = Math.min(Number(ctx.query.get("max-parts") ?? "1000") || 1000, 1000);
    const all = [...readParts(dir).entries()].filter(([n]) => n > marker).sort((a, b) =>
      a[0] - b[0]
    );
    const page = all.slice(0, maxParts);
    const truncated = all.length > page.length;
    sendXml(
      ctx,
      200,
      xmlDocument("ListPartsResult", {
        Bucket: info.bucket,
        Key: info.key,
        UploadId: id,
        Initiator: OWNER,
        Owner: OWNER,
        StorageClass: "STANDARD",
        PartNumberMarker: marker,
        ...(truncated ? { NextPartNumberMarker: page[page.length - 1][0] } : {}),
        MaxParts: maxParts,
        IsTruncated: truncated,
        Part: page.map(([n, p]) => ({
          PartNumber: n,
          LastModified: p.lastModified,
          ETag: quote(p.etag),
          Size: p.size,
        })),
      }),
    );
  }

  function listUploads(ctx: Ctx) {
    const bucket = ctx.bucket!;
    store.existingBucket(bucket);
    const q = ctx.query;
    const prefix = q.get("prefix") ?? "";
    const delimiter = q.get("delimiter") ?? "";
    const keyMarker = q.get("key-marker") ?? "";
    const idMarker = q.get("upload-id-marker") ?? "";
    const maxUploads = Math.min(Number(q.get("max-uploads") ?? "1000") || 1000, 1000);
    const urlEnc = q.get("encoding-type") === "url";
    const enc = (s: string) => (urlEnc ? uriEncode(s, true) : s);
    const uploads: { key: string; id: string; initiated: string }[] = [];
    for (const id of fs.readdirSync(store.uploadsDir)) {
      const info = readInfo(path.join(store.uploadsDir, id)); // undefined: being created or removed
      if (info?.bucket !== bucket || !info.key.startsWith(prefix)) continue;
      if (!visibleTo(info, ctx.principal)) continue;
      uploads.push({ key: info.key, id, initiated: info.initiated });
    }
    uploads.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.id < b.id ? -1 : 1));
    const items: XmlNode[] = [];
    const prefixes: XmlNode[] = [];
    let truncated = false;
    let lastKey = "";
    let lastId = "";
    const seen = new Set<string>();
    for (const u of uploads) {
      if (
        keyMarker && (u.key < keyMarker || (u.key === keyMarker && (!idMarker || u.id <= idMarker)))
      ) {
        continue;
      }
      if (delimiter) {
        const i = u.key.indexOf(delimiter, prefix.length);
        if (i >= 0) {
          const cp = u.key.slice(0, i + delimiter.length);
          if (!seen.has(cp)) {
            seen.add(cp);
            prefixes.push({ Prefix: enc(cp) });
          }
          continue;
        }
      }
      if (items.length >= maxUploads) {
        truncated = true;
        break;
      }
      items.push({
        Key: enc(u.key),
        UploadId: u.id,
        Initiator: OWNER,
        Owner: OWNER,
        StorageClass: "STANDARD",
        Initiated: u.initiated,
      });
      lastKey = u.key;
      lastId = u.id;
    }
    sendXml(
      ctx,
      200,
      xmlDocument("ListMultipartUploadsResult", {
        Bucket: bucket,
        KeyMarker: enc(keyMarker),
        UploadIdMarker: idMarker,
        ...(truncated ? { NextKeyMarker: enc(lastKey), NextUploadIdMarker: lastId } : {}),
        Prefix: enc(prefix),
        ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
        MaxUploads: maxUploads,
        IsTruncated: truncated,
        Upload: items,
        CommonPrefixes: prefixes,
      }),
    );
  }

  return { listParts, listUploads };
}
