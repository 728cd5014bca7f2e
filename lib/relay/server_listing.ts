/**
 * Bucket listing, bucket location and object listings (ListObjects V1 and V2).
 *
 * @module
 */

import { xmlDocument, xmlElement, xmlEscape, type XmlNode, XmlRaw } from "./xml.ts";
import { uriEncode } from "./sigv4.ts";
import { S3Error } from "./s3_error.ts";
import { DirListingCache, walkBucket, type WalkItem } from "./fs_walk.ts";
import { type Ctx, isoDate, OWNER, type RelayCore, sendXml } from "./server_core.ts";

/** One object as listed. */
interface Listed {
  key: string;
  size: number;
  mtime: Date;
  etag: string;
}

/** The owner element every listed object shows. */
const OWNER_XML = xmlElement("Owner", OWNER);

/**
 * A listed object's element (`Contents` or `Version`): `head` goes after the key, `tail` after
 * the storage class; the ETag is quoted as S3 sends it (`&quot;` in XML).
 */
function contentsXml(
  tag: string,
  item: Listed,
  enc: (s: string) => string,
  head: string,
  tail: string,
): string {
  return `<${tag}><Key>${xmlEscape(enc(item.key))}</Key>${head}` +
    `<LastModified>${isoDate(item.mtime)}</LastModified>` +
    `<ETag>&quot;${xmlEscape(item.etag)}&quot;</ETag><Size>${item.size}</Size>` +
    `<StorageClass>STANDARD</StorageClass>${tail}</${tag}>`;
}

/** Handlers for ListBuckets, GetBucketLocation and ListObjects(V2). */
export function listingHandlers(core: RelayCore) {
  const { store, region } = core;
  const listings = new DirListingCache();

  // ---- buckets ---------------------------------------------------------------------------

  function listBuckets(ctx: Ctx) {
    const q = ctx.query;
    const max = q.has("max-buckets") ? intParam(q, "max-buckets", 1, 10000) : undefined;
    const prefix = q.get("prefix") ?? "";
    const token = q.get("continuation-token") ?? "";
    const after = token === "" ? "" : decodeToken(token);
    const all = store.listBuckets().filter((b) => b.name.startsWith(prefix) && b.name > after);
    const page = max === undefined ? all : all.slice(0, max);
    const buckets = page.map((b) => ({ Name: b.name, CreationDate: isoDate(b.created) }));
    const more = page.length < all.length;
    sendXml(
      ctx,
      200,
      xmlDocument("ListAllMyBucketsResult", {
        Owner: OWNER,
        Buckets: { Bucket: buckets },
        ...(more ? { ContinuationToken: encodeToken(page[page.length - 1].name) } : {}),
        ...(q.has("prefix") ? { Prefix: prefix } : {}),
      }),
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

  /** What a listing shows of a walked object or folder marker. */
  function listed(bucket: string, item: WalkItem): Listed {
    if (item.marker) {
      const m = store.markers.meta(bucket, item.key);
      return {
        key: item.key,
        size: m?.size ?? 0,
        mtime: new Date(m?.mtimeMs ?? 0),
        etag: m?.etag ?? "",
      };
    }
    const st = item.stat!;
    return {
      key: item.key,
      size: st.size,
      mtime: st.mtime,
      etag: store.metaFor(bucket, item.key, st).etag,
    };
  }

  /**
   * One page of keys and common prefixes after `after`, in S3 order, rendered: `entry` renders
   * a key's element (a page holds up to 1,000, so they are rendered as strings straight away,
   * never as a tree of nodes). The walk is asynchronous (see fs_walk.ts) and ends early when
   * the client goes away (`gone` is then true and nothing should be sent).
   */
  async function collect(
    ctx: Ctx,
    bucket: string,
    o: { prefix: string; delimiter: string; after: string; maxKeys: number },
    entry: (item: Listed) => string,
    enc: (s: string) => string,
  ) {
    const { prefix, delimiter, after, maxKeys } = o;
    let contents = "";
    let prefixes = "";
    let last = "";
    let truncated = false;
    let count = 0;
    let lastPrefix = "";
    const skipPrefix = delimiter !== "" && after.endsWith(delimiter) ? after : "";
    const root = store.existingBucket(bucket);
    const gone = new AbortController();
    ctx.res.once("close", () => gone.abort());
    if (maxKeys > 0) {
      const walk = walkBucket({
        root,
        stateDir: store.stateDir,
        prefix,
        after,
        delimiter,
        cache: listings,
        signal: gone.signal,
        marker: (key) => store.markers.meta(bucket, key) !== undefined,
      });
      for await (const item of walk) {
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
          prefixes += `<CommonPrefixes><Prefix>${xmlEscape(enc(cp))}</Prefix></CommonPrefixes>`;
          last = cp;
          count++;
          continue;
        }
        if (count >= maxKeys) {
          truncated = true;
          break;
        }
        contents += entry(listed(bucket, item));
        last = item.key;
        count++;
      }
    }
    return {
      contents: new XmlRaw(contents),
      prefixes: new XmlRaw(prefixes),
      truncated,
      last,
      count,
      gone: gone.signal.aborted,
    };
  }

  async function listObjects(ctx: Ctx) {
    const q = ctx.query;
    const bucket = ctx.bucket!;
    const v2 = q.get("list-type") === "2";
    const urlEnc = q.get("encoding-type") === "url";
    const enc = (s: string) => (urlEnc ? uriEncode(s, true) : s);
    const prefix = q.get("prefix") ?? "";
    const delimiter = q.get("delimiter") ?? "";
    const maxKeys = q.has("max-keys") ? Math.min(intParam(q, "max-keys", 0), 1000) : 1000;
    // An empty continuation token is no token (as S3 answers it: listed from the start).
    const token = q.get("continuation-token");
    const startAfter = q.get("start-after") ?? "";
    const marker = q.get("marker") ?? "";
    const fetchOwner = q.get("fetch-owner") === "true";
    const after = !v2 ? marker : token ? decodeToken(token) : startAfter;

    const { contents, prefixes, truncated, last, count, gone } = await collect(
      ctx,
      bucket,
      { prefix, delimiter, after, maxKeys },
      (item) => contentsXml("Contents", item, enc, "", v2 && !fetchOwner ? "" : OWNER_XML),
      enc,
    );
    if (gone) return;
    const common = {
      Name: bucket,
      // V1 never encodes Prefix (clients do not decode it there); V2 does.
      Prefix: v2 ? enc(prefix) : prefix,
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
        ...(truncated ? { NextContinuationToken: encodeToken(last) } : {}),
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

  /** ListObjectVersions on an unversioned bucket: every object once, with version id `null`. */
  async function listVersions(ctx: Ctx) {
    const q = ctx.query;
    const bucket = ctx.bucket!;
    const urlEnc = q.get("encoding-type") === "url";
    const enc = (s: string) => (urlEnc ? uriEncode(s, true) : s);
    const prefix = q.get("prefix") ?? "";
    const delimiter = q.get("delimiter") ?? "";
    const maxKeys = q.has("max-keys") ? Math.min(intParam(q, "max-keys", 0), 1000) : 1000;
    const keyMarker = q.get("key-marker") ?? "";
    const versionMarker = q.get("version-id-marker") ?? "";
    if (versionMarker !== "" && versionMarker !== "null") {
      throw new S3Error(400, "InvalidArgument", "Invalid version id specified");
    }
    const { contents, prefixes, truncated, last, gone } = await collect(
      ctx,
      bucket,
      { prefix, delimiter, after: keyMarker, maxKeys },
      (item) =>
        contentsXml(
          "Version",
          item,
          enc,
          "<VersionId>null</VersionId><IsLatest>true</IsLatest>",
          OWNER_XML,
        ),
      enc,
    );
    if (gone) return;
    sendXml(
      ctx,
      200,
      xmlDocument("ListVersionsResult", {
        Name: bucket,
        Prefix: enc(prefix),
        KeyMarker: enc(keyMarker),
        VersionIdMarker: versionMarker,
        ...(truncated ? { NextKeyMarker: enc(last), NextVersionIdMarker: "null" } : {}),
        MaxKeys: maxKeys,
        ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
        ...(urlEnc ? { EncodingType: "url" } : {}),
        IsTruncated: truncated,
        Version: contents,
        CommonPrefixes: prefixes,
      }),
    );
  }

  return { listBuckets, getLocation, listObjects, listVersions };
}

/** An integer query parameter within bounds, or 400 InvalidArgument naming it. */
function intParam(q: Map<string, string>, name: string, min: number, max = Infinity): number {
  const raw = q.get(name) ?? "";
  const n = /^-?\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new S3Error(
      400,
      "InvalidArgument",
      `${name} must be an integer from ${min}` +
        (max === Infinity ? "" : ` to ${max}`),
    );
  }
  return n;
}

/** The opaque continuation token for "after this name". */
function encodeToken(after: string): string {
  return Buffer.from("k:" + after).toString("base64url");
}

function decodeToken(token: string): string {
  const t = Buffer.from(token, "base64url").toString("utf8");
  if (!t.startsWith("k:")) {
    throw new S3Error(400, "InvalidArgument", "The continuation token provided is incorrect");
  }
  return t.slice(2);
}
