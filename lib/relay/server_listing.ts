/**
 * Bucket listing, bucket location and object listings (ListObjects V1 and V2).
 *
 * @module
 */

import type { XmlNode } from "./xml.ts";
import { xmlDocument } from "./xml.ts";
import { uriEncode } from "./sigv4.ts";
import { keySegments, S3Error } from "./fs_store.ts";
import { type Ctx, isoDate, OWNER, quote, type RelayCore, sendXml } from "./server_core.ts";

/** Handlers for ListBuckets, GetBucketLocation and ListObjects(V2). */
export function listingHandlers(core: RelayCore) {
  const { store, region } = core;

  // ---- buckets ---------------------------------------------------------------------------

  function listBuckets(ctx: Ctx) {
    const buckets = store.listBuckets().map((b) => ({
      Name: b.name,
      CreationDate: isoDate(b.created),
    }));
    sendXml(
      ctx,
      200,
      xmlDocument("ListAllMyBucketsResult", { Owner: OWNER, Buckets: { Bucket: buckets } }),
    );
  }

  function getLocation(ctx: Ctx) {
    store.existingBucket(ctx.bucket!);
    const loc = region === "us-east-1" ? "" : region;
    sendXml(
      ctx,
      200,
      `<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${loc}</LocationConstraint>`,
    );
  }

  // ---- listing ---------------------------------------------------------------------------

  function listObjects(ctx: Ctx) {
    const q = ctx.query;
    const bucket = ctx.bucket!;
    const v2 = q.get("list-type") === "2";
    const urlEnc = q.get("encoding-type") === "url";
    const enc = (s: string) => (urlEnc ? uriEncode(s, true) : s);
    const prefix = q.get("prefix") ?? "";
    const delimiter = q.get("delimiter") ?? "";
    const maxKeysRaw = q.get("max-keys");
    let maxKeys = 1000;
    if (maxKeysRaw !== undefined) {
      maxKeys = Number(maxKeysRaw);
      if (!Number.isInteger(maxKeys) || maxKeys < 0) {
        throw new S3Error(400, "InvalidArgument", "max-keys must be a non-negative integer");
      }
      maxKeys = Math.min(maxKeys, 1000);
    }
    let after = "";
    const token = q.get("continuation-token");
    const startAfter = q.get("start-after") ?? "";
    const marker = q.get("marker") ?? "";
    if (v2) {
      if (token !== undefined) {
        const t = Buffer.from(token, "base64url").toString("utf8");
        if (!t.startsWith("k:")) {
          throw new S3Error(400, "InvalidArgument", "The continuation token provided is incorrect");
        }
        after = t.slice(2);
      } else after = startAfter;
    } else after = marker;

    const contents: XmlNode[] = [];
    const prefixes: XmlNode[] = [];
    let last = "";
    let truncated = false;
    let count = 0;
    let lastPrefix = "";
    const skipPrefix = delimiter !== "" && after.endsWith(delimiter) ? after : "";
    if (maxKeys > 0) {
      for (const item of store.walk(bucket, prefix, after, delimiter)) {
        let cp: string | undefined;
        if (item.prefix) cp = item.key;
        else if (delimiter !== "") {
          const i = item.key.indexOf(delimiter, prefix.length);
          if (i >= 0) cp = item.key.slice(0, i + delimiter.length);
        }
        if (cp !== undefined) {
          if (cp === lastPrefix || (skipPrefix && cp === skipPrefix)) continue;
          if (count >= maxKeys) {
            truncated = true;
            break;
          }
          lastPrefix = cp;
          prefixes.push({ Prefix: enc(cp) });
          last = cp;
          count++;
          continue;
        }
        if (count >= maxKeys) {
          truncated = true;
          break;
        }
        // The walk stat'ed the file and kept symlinks inside the bucket; names the relay
        // would refuse as keys (a backslash, say) are not listed either.
        try {
          keySegments(item.key);
        } catch {
          continue;
        }
        const st = item.stat!;
        contents.push({
          Key: enc(item.key),
          LastModified: isoDate(st.mtime),
          ETag: quote(store.metaFor(bucket, item.key, st).etag),
          Size: st.size,
          StorageClass: "STANDARD",
          ...(v2 ? {} : { Owner: OWNER }),
        });
        last = item.key;
        count++;
      }
    } else {
      store.existingBucket(bucket);
    }
    const common = {
      Name: bucket,
      Prefix: enc(prefix),
      ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
      MaxKeys: maxKeys,
      ...(urlEnc ? { EncodingType: "url" } : {}),
      IsTruncated: truncated,
    };
    let body: XmlNode;
    if (v2) {
      body = {
        ...common,
        KeyCount: count,
        ...(token !== undefined ? { ContinuationToken: token } : {}),
        ...(truncated
          ? { NextContinuationToken: Buffer.from("k:" + last).toString("base64url") }
          : {}),
        ...(startAfter ? { StartAfter: enc(startAfter) } : {}),
        Contents: contents,
        CommonPrefixes: prefixes,
      };
    } else {
      body = {
        ...common,
        Marker: enc(marker),
        ...(truncated ? { NextMarker: enc(last) } : {}),
        Contents: contents,
        CommonPrefixes: prefixes,
      };
    }
    sendXml(ctx, 200, xmlDocument("ListBucketResult", body));
  }

  return { listBuckets, getLocation, listObjects };
}
