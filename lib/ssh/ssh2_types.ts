/**
 * The small part of npm:ssh2's API this project uses, typed here. (`@types/ssh2` pins
 * `@types/node@18`, whose declarations clash with the project's `@types/node@24` in one
 * program, so it is not imported.)
 *
 * @module
 */
import type { Duplex, Readable } from "node:stream";
// @ts-types="./ssh2_module.d.ts"
import * as ssh2 from "ssh2";

/** An SSH channel (a duplex stream with a separate stderr). */
export interface ClientChannel extends Duplex {
  stderr: Readable;
  on(event: "exit", cb: (code: number | null) => void): this;
  on(event: string | symbol, cb: (...args: never[]) => void): this;
}

/** ssh2 host key algorithm names. */
export type ServerHostKeyAlgorithm =
  | "ssh-ed25519"
  | "ecdsa-sha2-nistp256"
  | "ecdsa-sha2-nistp384"
  | "ecdsa-sha2-nistp521"
  | "rsa-sha2-512"
  | "rsa-sha2-256"
  | "ssh-rsa";

/** ssh2 `ConnectConfig` (the fields used). */
export interface ConnectConfig {
  host: string;
  port: number;
  username: string;
  privateKey?: string;
  agent?: string;
  readyTimeout?: number;
  keepaliveInterval?: number;
  keepaliveCountMax?: number;
  tryKeyboard?: boolean;
  algorithms?: { serverHostKey?: ServerHostKeyAlgorithm[] };
  hostVerifier?: (key: Uint8Array) => boolean;
}

/** Details of a connection accepted on a remote forward. */
export interface TcpConnectionInfo {
  destIP: string;
  destPort: number;
  srcIP: string;
  srcPort: number;
}

/** ssh2 `Client` (the methods used). */
export interface Ssh2Client {
  on(event: "ready" | "close" | "end", cb: () => void): this;
  on(event: "error", cb: (err: Error & { level?: string }) => void): this;
  on(
    event: "tcp connection",
    cb: (info: TcpConnectionInfo, accept: () => ClientChannel, reject: () => void) => void,
  ): this;
  once(event: "ready" | "close" | "end", cb: () => void): this;
  once(event: "error", cb: (err: Error & { level?: string }) => void): this;
  connect(config: ConnectConfig): this;
  end(): this;
  destroy(): this;
  setNoDelay(noDelay: boolean): this;
  exec(command: string, cb: (err: Error | undefined, ch: ClientChannel) => void): this;
  forwardIn(addr: string, port: number, cb: (err: Error | undefined, port: number) => void): this;
  unforwardIn(addr: string, port: number, cb?: (err: Error | undefined) => void): this;
  openssh_forwardOutStreamLocal(
    socketPath: string,
    cb: (err: Error | undefined, ch: ClientChannel) => void,
  ): this;
}

interface Ssh2Module {
  Client: new () => Ssh2Client;
  utils: { parseKey(data: string, passphrase?: string): unknown };
}

const mod =
  ((ssh2 as unknown as { default?: Ssh2Module }).default ?? ssh2) as unknown as Ssh2Module;

/** Creates an ssh2 client. */
export function newSsh2Client(): Ssh2Client {
  return new mod.Client();
}

/** ssh2's key parser: the parsed key, or an Error (e.g. encrypted without passphrase). */
export function parseSshKey(text: string): Error | unknown {
  return mod.utils.parseKey(text);
}
