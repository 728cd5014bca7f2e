/**
 * SSH for remote podman hosts: `CONTAINER_HOST` parsing, known_hosts verification (hashed
 * entries too), key/agent authentication, streams to remote unix sockets and remote port
 * forwards, with keepalives so a dropped connection is noticed within a bounded time.
 *
 * @module
 */
export * from "./container_host.ts";
export * from "./known_hosts.ts";
export * from "./connection.ts";
