/**
 * Headless Chromium (Debian's `chromium`) driven over the DevTools protocol on a loopback
 * port: open a page, evaluate expressions in it, click, take screenshots. Used to check what a
 * person sees (the HTML run report).
 *
 * @module
 */

/** An open page. Dispose to close the browser (its process and profile dir). */
export interface BrowserPage extends AsyncDisposable {
  /** Evaluates `expression` in the page and returns its (JSON) value; awaits promises. */
  evaluate<T = unknown>(expression: string): Promise<T>;
  /** Sends a DevTools protocol command to the page. */
  send(method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** A PNG of the viewport, the whole page (`fullPage`), or a `clip` of it (CSS pixels). */
  screenshot(opts?: {
    fullPage?: boolean;
    clip?: { x: number; y: number; width: number; height: number };
  }): Promise<Uint8Array>;
}

/** Whether Debian's chromium is installed. */
export function chromiumPath(): string | undefined {
  for (const p of ["/usr/bin/chromium", "/usr/bin/chromium-browser"]) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* next */ }
  }
  return undefined;
}

/** Starts headless Chromium on `url` (window `width`×`height`) and attaches to its page. */
export async function openPage(
  url: string,
  { width = 1200, height = 900, timeoutMs = 60_000 } = {},
): Promise<BrowserPage> {
  const exe = chromiumPath();
  if (!exe) throw new Error("chromium is not installed (apt-get install chromium)");
  const profile = await Deno.makeTempDir({ prefix: "gp-chromium-" });
  const deadline = Date.now() + timeoutMs;
  const proc = new Deno.Command(exe, {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--hide-scrollbars",
      "--no-first-run",
      "--disable-extensions",
      "--remote-debugging-address=127.0.0.1",
      "--remote-debugging-port=0",
      `--user-data-dir=${profile}`,
      `--window-size=${width},${height}`,
      url,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let ws: WebSocket | undefined;
  const cleanup = async () => {
    ws?.close();
    try {
      proc.kill("SIGKILL");
    } catch { /* gone */ }
    await proc.status;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  };
  try {
    // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/<id>" on stderr.
    const reader = proc.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    let port: number | undefined;
    while (port === undefined) {
      if (Date.now() > deadline) throw new Error(`chromium did not start:\n${text}`);
      const { value, done } = await reader.read();
      if (done) throw new Error(`chromium exited:\n${text}`);
      text += value;
      const m = /DevTools listening on ws:\/\/127\.0\.0\.1:(\d+)\//.exec(text);
      if (m) port = Number(m[1]);
    }
    // Keep draining stderr so chromium never blocks on it.
    (async () => {
      try {
        while (!(await reader.read()).done) { /* discard */ }
      } catch { /* closed */ }
    })();
    let target: { webSocketDebuggerUrl: string } | undefined;
    while (!target) {
      if (Date.now() > deadline) throw new Error("chromium: no page target");
      const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
        type: string;
        webSocketDebuggerUrl: string;
      }[];
      target = list.find((t) => t.type === "page");
      if (!target) await new Promise((r) => setTimeout(r, 100));
    }
    const sock = new WebSocket(target.webSocketDebuggerUrl);
    ws = sock;
    await new Promise<void>((res, rej) => {
      sock.onopen = () => res();
      sock.onerror = () => rej(new Error("chromium: DevTools socket failed"));
    });
    let nextId = 1;
    const pending = new Map<
      number,
      { res: (v: Record<string, unknown>) => void; rej: (e: Error) => void }
    >();
    sock.onmessage = (ev) => {
      const msg = JSON.parse(String(ev.data));
      const p = msg.id !== undefined ? pending.get(msg.id) : undefined;
      if (!p) return;
      pending.delete(msg.id);
      if (msg.error) p.rej(new Error(`${msg.error.message}`));
      else p.res(msg.result ?? {});
    };
    const send = (method: string, params: Record<string, unknown> = {}) =>
      new Promise<Record<string, unknown>>((res, rej) => {
        const id = nextId++;
        const timer = setTimeout(() => {
          pending.delete(id);
          rej(new Error(`chromium: ${method} timed out`));
        }, 30_000);
        pending.set(id, {
          res: (v) => {
            clearTimeout(timer);
            res(v);
          },
          rej: (e) => {
            clearTimeout(timer);
            rej(e);
          },
        });
        sock.send(JSON.stringify({ id, method, params }));
      });
    const evaluate = async <T>(expression: string): Promise<T> => {
      const r = await send("Runtime.evaluate", {
        expression,
        returnByValue: true,
        awaitPromise: true,
      }) as { result: { value?: T }; exceptionDetails?: { text: string } };
      if (r.exceptionDetails) throw new Error(`page: ${r.exceptionDetails.text} in ${expression}`);
      return r.result.value as T;
    };
    // The first page may still be about:blank, or loading `url`.
    while (
      !(await evaluate<boolean>(
        `location.href === ${JSON.stringify(url)} && document.readyState === "complete"`,
      ))
    ) {
      if (Date.now() > deadline) throw new Error("chromium: page did not load");
      await new Promise((r) => setTimeout(r, 50));
    }
    return {
      evaluate,
      send,
      async screenshot({ fullPage = false, clip } = {}) {
        const r = await send("Page.captureScreenshot", {
          format: "png",
          ...(fullPage ? { captureBeyondViewport: true } : {}),
          ...(clip ? { clip: { ...clip, scale: 1 } } : {}),
        }) as { data: string };
        return Uint8Array.from(atob(r.data), (c) => c.charCodeAt(0));
      },
      [Symbol.asyncDispose]: cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
