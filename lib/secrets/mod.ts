/**
 * Gangplank's secret mapping (reference §7.3) and mount-ref (§7.4) tables, and pure functions
 * that turn labelled Secrets/ConfigMaps (names, labels and data keys only, never values) into
 * worker pod env entries (`secretKeyRef`), secret/configMap volumes and mounts.
 *
 * @example
 * ```ts
 * import { metadataOf, secretMaps } from "./mod.ts";
 * const additions = secretMaps([metadataOf("Secret", secretFromApi)]);
 * ```
 *
 * @module
 */
export * from "./table.ts";
export * from "./map.ts";
