/**
 * Conformance: runs the applicable selection of ceph/s3-tests (the de-facto S3 conformance
 * suite, boto3-based) against a relay started the way a user starts it (`scripts/relay.ts`),
 * and fails when fewer tests pass than {@link PASS_THRESHOLD}. Prints the family table
 * (pass/total per family) and every failure with its known reason, or "UNEXPECTED".
 *
 * The suite lives outside the project (`../shared/vendor/s3-tests`, or `$S3_TESTS_DIR`) and
 * runs with Debian's Python (`python3-boto3 python3-pytest ...`, installed by `.ci/run`).
 *
 * @module
 */

import assert from "node:assert/strict";
import * as fs from "node:fs";
import { ROOT, runCommand, tempDir } from "../_helpers/mod.ts";
import { startRelayProcess } from "./server_harness.ts";

/** Raised as fixes land; never lowered. */
const PASS_THRESHOLD = 228;

/**
 * Parallel pytest workers (pytest-xdist, Debian's `python3-pytest-xdist`): each worker has its
 * own random bucket prefix, so their tests and cleanups never meet. The suite is CPU-bound
 * (about 170 s of CPU for boto3 and the relay together), so one worker per CPU, at most two;
 * serial on one CPU or when pytest-xdist is missing.
 */
const WORKERS = Math.min(2, navigator.hardwareConcurrency);

const SUITE = Deno.env.get("S3_TESTS_DIR") ?? `${ROOT}/../shared/vendor/s3-tests`;

/**
 * Feature families a directory-backed, single-user relay does not offer, deselected by the
 * suite's own markers.
 */
const EXCLUDED_MARKERS = [
  "bucket_policy",
  "user_policy",
  "group_policy",
  "role_policy",
  "session_policy",
  "bucket_encryption",
  "encryption",
  "sse_s3",
  "bucket_logging",
  "bucket_logging_cleanup",
  "fails_without_logging_rollover",
  "lifecycle",
  "lifecycle_expiration",
  "lifecycle_transition",
  "cloud_transition",
  "cloud_restore",
  "versioning",
  "delete_marker",
  "object_lock",
  "object_ownership",
  "tagging",
  "s3website",
  "s3website_routing_rules",
  "s3website_redirect_location",
  "sns",
  "test_of_sts",
  "webidentity_test",
  "abac_test",
  "s3select",
  "iam_account",
  "iam_cross_account",
  "iam_role",
  "iam_tenant",
  "iam_user",
  "token_claims_trust_policy_test",
  "token_principal_tag_role_policy_test",
  "token_request_tag_trust_policy_test",
  "token_resource_tags_test",
  "token_role_tags_test",
  "token_tag_keys_test",
  // Ceph RGW extensions and tests of behaviour AWS itself does not have.
  "appendobject",
  "fails_on_aws",
];

/**
 * The same families by test name, for tests the suite does not mark (`post_object`: browser
 * form uploads, authorised by a POST policy document).
 */
const EXCLUDED_WORDS = [
  "acl",
  "policy",
  "cors",
  "torrent",
  "website",
  "versioning",
  "versioned",
  "object_lock",
  "public_block",
  "lifecycle",
  "logging",
  "encryption",
  "tagging",
  "ownership",
  "post_object",
];

/** Families of the report, first match wins. */
const FAMILIES: [string, RegExp][] = [
  ["auth v2 (headers)", /_aws2$/],
  ["headers / bad requests", /^test_(object|bucket)_create_(bad|date|amz|contentlength)/],
  ["checksums", /checksum|cksum/],
  ["object attributes", /object_attributes/],
  ["conditional", /if(match|nonematch|modifiedsince|unmodifiedsince|_match|_none_match)/],
  ["multipart", /multipart|upload_part|_part\b|get_part/],
  ["copy", /copy/],
  ["listing v2", /listv2|bucketv2|basic_key_count/],
  ["listing v1", /bucket_list|list_return|_list_/],
  ["list buckets", /buckets?_(list|create_then_list)|list_buckets/],
  ["presigned / raw", /raw_|x_amz_expires|presigned/],
  ["buckets", /^test_bucket_/],
  ["atomic / 100-continue", /atomic|100_continue/],
  ["ranges", /range/],
  ["objects", /.*/],
];

function familyOf(name: string): string {
  return FAMILIES.find(([, re]) => re.test(name))![0];
}

const ACL = "needs ACLs or anonymous access (the relay has one user, no ACLs, and refuses " +
  "unsigned requests)";
const SECOND_USER = "needs a second user (the relay has one key pair per run)";
const VERSIONING = "needs bucket versioning (PutBucketVersioning)";
const OLD_BOTOCORE = "Debian's botocore 1.29 does not know the parameter the test passes " +
  "(client-side error before any request; the relay side is covered by tests/relay)";

/**
 * Tests of the selection that cannot apply to a single-user, unversioned relay or cannot run
 * with Debian's botocore: deselected, each with its reason (printed in the report).
 */
const NOT_APPLICABLE: Record<string, string> = {
  test_bucket_list_return_data: ACL,
  test_bucket_list_objects_anonymous: ACL,
  test_bucket_listv2_objects_anonymous: ACL,
  test_expected_bucket_owner: ACL,
  test_object_raw_get: ACL,
  test_object_raw_get_bucket_gone: ACL,
  test_object_delete_key_bucket_gone: ACL,
  test_object_raw_get_object_gone: ACL,
  test_object_raw_get_x_amz_expires_not_expired: ACL,
  test_object_raw_get_x_amz_expires_not_expired_tenant: ACL,
  test_object_raw_get_x_amz_expires_out_range_zero: ACL,
  test_object_raw_get_x_amz_expires_out_max_range: ACL,
  test_object_raw_get_x_amz_expires_out_positive_range: ACL,
  test_object_anon_put_write_access: ACL,
  test_access_bucket_private_object_private: ACL,
  test_access_bucket_private_objectv2_private: ACL,
  test_access_bucket_private_object_publicread: ACL,
  test_access_bucket_private_objectv2_publicread: ACL,
  test_access_bucket_private_object_publicreadwrite: ACL,
  test_access_bucket_private_objectv2_publicreadwrite: ACL,
  test_access_bucket_publicread_object_private: ACL,
  test_access_bucket_publicread_object_publicread: ACL,
  test_access_bucket_publicread_object_publicreadwrite: ACL,
  test_access_bucket_publicreadwrite_object_private: ACL,
  test_access_bucket_publicreadwrite_object_publicread: ACL,
  test_access_bucket_publicreadwrite_object_publicreadwrite: ACL,
  test_bucket_create_special_key_names: ACL,
  test_object_copy_not_owned_object_bucket: ACL,
  test_list_multipart_upload_owner: ACL,
  test_100_continue: ACL,
  test_block_public_restrict_public_buckets: ACL,
  test_bucket_create_exists_nonowner: SECOND_USER,
  test_object_copy_not_owned_bucket: SECOND_USER,
  test_put_current_object_if_none_match: VERSIONING,
  test_multipart_put_current_object_if_none_match: VERSIONING,
  test_put_current_object_if_match: VERSIONING,
  test_multipart_put_current_object_if_match: VERSIONING,
  test_put_object_current_if_match: VERSIONING,
  test_object_checksum_crc64nvme: OLD_BOTOCORE,
  test_multipart_use_cksum_helper_sha256: OLD_BOTOCORE,
  test_multipart_use_cksum_helper_crc64nvme: OLD_BOTOCORE,
  test_multipart_use_cksum_helper_crc32: OLD_BOTOCORE,
  test_multipart_use_cksum_helper_crc32c: OLD_BOTOCORE,
  test_multipart_use_cksum_helper_sha1: OLD_BOTOCORE,
  test_put_object_if_match: OLD_BOTOCORE,
  test_multipart_put_object_if_match: OLD_BOTOCORE,
  test_object_create_bad_contentlength_negative: OLD_BOTOCORE,
  test_object_create_bad_expect_mismatch: OLD_BOTOCORE,
  test_bucket_create_bad_expect_mismatch: OLD_BOTOCORE,
  test_list_buckets_paginated: OLD_BOTOCORE + " (MaxBuckets is never sent)",
  test_object_raw_put_authenticated_expired: "Debian's awscrt signer refuses a negative " +
    "expiry client-side (AssertionError before any request); expired presigned URLs are " +
    "covered by tests/relay/sigv2_test.ts",
};

/**
 * Header tests the suite itself cannot run: each sets or removes a header in a botocore
 * `before-call` hook, and botocore's signer (or Python's http.client) puts a valid one back,
 * so the server receives a correct request. The suite marks each `fails_on_rgw` with a TODO
 * ("once we have learned how to remove/manipulate the ... header"). The hostile request each
 * one means is sent byte for byte over a raw socket by tests/relay/hostile_headers_test.ts.
 */
const HOOK_OVERRIDDEN = (what: string) =>
  "the suite's own TODO (fails_on_rgw): botocore puts back the header the test " +
  `removes or replaces, so no client of the suite can send it; ${what} is proven by ` +
  "tests/relay/hostile_headers_test.ts";

/** The tests of {@link HOOK_OVERRIDDEN}, with what the relay answers. */
const HEADER_HOOK_TESTS: Record<string, string> = {
  test_object_create_bad_authorization_empty: "an empty Authorization → 403 AccessDenied",
  test_object_create_bad_authorization_none: "no Authorization → 403 AccessDenied",
  test_bucket_create_bad_authorization_empty: "an empty Authorization → 403 AccessDenied",
  test_bucket_create_bad_authorization_none: "no Authorization → 403 AccessDenied",
  test_object_create_bad_authorization_incorrect_aws2: "an unknown access key → 403 " +
    "InvalidAccessKeyId, as S3 answers (the test's assertion of the code InvalidDigest, S3's " +
    "400 for a bad Content-MD5, matches no S3 answer)",
  test_object_create_bad_authorization_invalid_aws2: "'AWS HAHAHA' → 400 InvalidArgument",
  test_bucket_create_bad_authorization_invalid_aws2: "'AWS HAHAHA' → 400 InvalidArgument",
  test_object_create_bad_date_none_aws2: "no Date nor x-amz-date → 403 AccessDenied",
  test_bucket_create_bad_date_none_aws2: "no Date nor x-amz-date → 403 AccessDenied",
  test_object_create_bad_contentlength_none: "a PUT without Content-Length → 411 " +
    "MissingContentLength",
};
for (const [name, what] of Object.entries(HEADER_HOOK_TESTS)) {
  NOT_APPLICABLE[name] = HOOK_OVERRIDDEN(what);
}

const PARENT_IS_OBJECT = "needs an object 'foo/bar' and keys under 'foo/bar/' at once, " +
  "which a plain-file store cannot hold (answered 409 XMinioParentIsObject)";

/** Why a test of the selection fails today. */
const KNOWN_FAILURES: Record<string, string> = {
  test_bucket_list_delimiter_basic: PARENT_IS_OBJECT,
  test_bucket_listv2_delimiter_basic: PARENT_IS_OBJECT,
};

/** Tests of the selection that live in test_headers.py (the rest are in test_s3.py). */
const HEADER_TESTS = new Set([
  "test_object_create_bad_contentlength_negative",
  "test_object_create_bad_expect_mismatch",
  "test_bucket_create_bad_expect_mismatch",
  ...Object.keys(HEADER_HOOK_TESTS),
]);

/** One test's result, as the plugin `s3_tests_plugin/gp_s3tests_report.py` writes it. */
interface Outcome {
  name: string;
  status: "passed" | "failed" | "skipped";
  message: string;
}

Deno.test({
  name: "s3-tests: the applicable selection of ceph/s3-tests passes against the relay",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    assert.ok(
      fs.existsSync(`${SUITE}/s3tests/functional/test_s3.py`),
      `ceph/s3-tests not found at ${SUITE} (set S3_TESTS_DIR)`,
    );
    await using tmp = await tempDir("gp-s3tests-");
    const data = `${tmp.path}/data`;
    await Deno.mkdir(data);
    await using relay = await startRelayProcess(data, `${tmp.path}/minio.json`);
    const { cfg } = relay;
    const user = (extra = "") =>
      `display_name = gangplank\nuser_id = gangplank\nemail = relay@example.invalid\n${extra}` +
      `access_key = ${cfg.accesskey}\nsecret_key = ${cfg.secretkey}\n`;
    const conf = `${tmp.path}/s3tests.conf`;
    await Deno.writeTextFile(
      conf,
      `[DEFAULT]\nhost = ${cfg.host}\nport = ${cfg.port}\nis_secure = False\nssl_verify = False\n` +
        `[fixtures]\nbucket prefix = gp-{random}-\n` +
        `[s3 main]\n${user("api_name = \n")}[s3 alt]\n${user()}` +
        `[s3 tenant]\n${user("tenant = gangplank\n")}` +
        `[iam]\n${user()}[iam root]\n${user()}[iam alt root]\n${user()}`,
      { mode: 0o600 },
    );
    const xdist = WORKERS > 1 &&
      (await runCommand("/usr/bin/python3", ["-c", "import xdist"])).code === 0;
    const results = `${tmp.path}/results.jsonl`;
    const started = Date.now();
    const r = await runCommand("/usr/bin/python3", [
      "-m",
      "pytest",
      "-q",
      "-p",
      "no:cacheprovider",
      "--tb=line",
      "-p",
      "gp_s3tests_report",
      ...(xdist ? ["-n", String(WORKERS)] : []),
      "-m",
      `not (${EXCLUDED_MARKERS.join(" or ")})`,
      "-k",
      `not (${EXCLUDED_WORDS.join(" or ")})`,
      ...Object.keys(NOT_APPLICABLE).flatMap((name) => [
        "--deselect",
        `s3tests/functional/${
          name.includes("_aws2") || HEADER_TESTS.has(name) ? "test_headers.py" : "test_s3.py"
        }::${name}`,
      ]),
      "s3tests/functional/test_s3.py",
      "s3tests/functional/test_headers.py",
    ], {
      cwd: SUITE,
      env: {
        S3TEST_CONF: conf,
        GP_S3TESTS_RESULTS: results,
        PYTHONPATH: `${ROOT}/tests/relay/s3_tests_plugin`,
        PYTHONDONTWRITEBYTECODE: "1",
        // A refused request is an answer, not a reason to retry (retries only cost time).
        AWS_MAX_ATTEMPTS: "1",
        HOME: tmp.path,
      },
      timeoutMs: 15 * 60_000,
    });
    const seconds = Math.round((Date.now() - started) / 1000);
    assert.ok(
      fs.existsSync(results),
      `pytest wrote no results (exit ${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr}`,
    );
    const outcomes = (await Deno.readTextFile(results)).split("\n").filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Outcome);
    assert.ok(
      outcomes.length > 200,
      `only ${outcomes.length} tests ran:\n${r.stdout.slice(-3000)}`,
    );

    const table = new Map<string, { pass: number; total: number }>();
    for (const o of outcomes) {
      if (o.status === "skipped") continue;
      const f = familyOf(o.name);
      const row = table.get(f) ?? { pass: 0, total: 0 };
      row.total++;
      if (o.status === "passed") row.pass++;
      table.set(f, row);
    }
    const passed = outcomes.filter((o) => o.status === "passed").length;
    const failed = outcomes.filter((o) => o.status === "failed");
    const skipped = outcomes.filter((o) => o.status === "skipped");
    const lines = [
      `s3-tests: ${passed}/${passed + failed.length} passed in ${seconds} s ` +
      (xdist ? `(${WORKERS} workers)` : "(serially)") +
      (skipped.length ? `, ${skipped.length} skipped by the suite` : ""),
    ];
    for (const [f] of FAMILIES) {
      const row = table.get(f);
      if (row) lines.push(`  ${f.padEnd(26)} ${row.pass}/${row.total}`);
    }
    for (const o of failed) {
      lines.push(`  FAIL ${o.name}: ${KNOWN_FAILURES[o.name] ?? `UNEXPECTED (${o.message})`}`);
    }
    for (const o of skipped) lines.push(`  SKIP ${o.name}`);
    for (const [name, why] of Object.entries(NOT_APPLICABLE)) {
      lines.push(`  NOT APPLICABLE ${name}: ${why}`);
    }
    console.log(lines.join("\n"));
    assert.ok(
      passed >= PASS_THRESHOLD,
      `only ${passed} s3-tests passed, the threshold is ${PASS_THRESHOLD}`,
    );
  },
});
