/**
 * A plain npm:minio client for a relay config (Gangplank's minio JSON): the independent S3
 * client tests and benchmarks use, without the project's retry/transport layer.
 *
 * @module
 */
import * as Minio from "minio";
import type * as http from "node:http";
import type { RelayConfig } from "../../lib/relay/mod.ts";

/** What a test may change from the config's own keys and defaults. */
export interface MinioForOptions {
  accessKey?: string;
  secretKey?: string;
  partSize?: number;
  transportAgent?: http.Agent;
}

/** An npm:minio client speaking to the endpoint `cfg` describes, plain HTTP. */
export function minioFor(cfg: RelayConfig, opts: MinioForOptions = {}): Minio.Client {
  return new Minio.Client({
    endPoint: cfg.host,
    port: cfg.port,
    useSSL: false,
    accessKey: opts.accessKey ?? cfg.accesskey,
    secretKey: opts.secretKey ?? cfg.secretkey,
    region: cfg.region,
    partSize: opts.partSize,
    transportAgent: opts.transportAgent,
  });
}
