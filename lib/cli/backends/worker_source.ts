/**
 * The worker source flags shared by the container backends (podman, kube).
 *
 * @module
 */
import { UsageError } from "../../errors/mod.ts";

/**
 * `--worker-source` and `--deno-image` as the podman and kube backends read them. The Deno
 * image with `--worker-source image` is refused: that source runs the image's own deno, so the
 * flag would be ignored.
 *
 * @throws {UsageError} naming both flags.
 */
export function workerSourceOptions(
  flags: Readonly<Record<string, unknown>>,
): { workerSource?: "stock" | "image"; denoImage?: string } {
  const workerSource = flags.workerSource as "stock" | "image" | undefined;
  const denoImage = flags.denoImage === undefined ? undefined : String(flags.denoImage);
  if (workerSource === "image" && denoImage) {
    throw new UsageError(
      `--deno-image ${denoImage}: applies to --worker-source stock; --worker-source image ` +
        "runs the image's own deno",
    );
  }
  return { workerSource, denoImage };
}
