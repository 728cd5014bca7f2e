import assert from "node:assert/strict";
import { UsageError } from "../../lib/errors/mod.ts";
import { ContainerHostError, parseContainerHost } from "../../lib/ssh/mod.ts";

Deno.test("parseContainerHost: ssh URIs with user, port, IPv6 and the socket path", () => {
  assert.deepEqual(
    parseContainerHost("ssh://core@build1.example.com/run/user/1000/podman/podman.sock", "me"),
    {
      kind: "ssh",
      user: "core",
      host: "build1.example.com",
      port: 22,
      socketPath: "/run/user/1000/podman/podman.sock",
    },
  );
  assert.deepEqual(parseContainerHost("ssh://root@127.0.0.1:2222/tmp/x/podman.sock", "me"), {
    kind: "ssh",
    user: "root",
    host: "127.0.0.1",
    port: 2222,
    socketPath: "/tmp/x/podman.sock",
  });
  assert.deepEqual(parseContainerHost("ssh://core@[::1]:2200/run/podman/podman.sock", "me"), {
    kind: "ssh",
    user: "core",
    host: "::1",
    port: 2200,
    socketPath: "/run/podman/podman.sock",
  });
  assert.deepEqual(parseContainerHost("ssh://[fe80::1]/run/podman/podman.sock", "me"), {
    kind: "ssh",
    user: "me",
    host: "fe80::1",
    port: 22,
    socketPath: "/run/podman/podman.sock",
  });
});

Deno.test("parseContainerHost: the user defaults to the caller's (not '' as in Gangplank)", () => {
  const h = parseContainerHost("ssh://host/run/podman/podman.sock", "alice");
  assert.equal(h.kind === "ssh" && h.user, "alice");
});

Deno.test("parseContainerHost: unix sockets", () => {
  assert.deepEqual(parseContainerHost("unix:///run/podman/podman.sock", "me"), {
    kind: "unix",
    socketPath: "/run/podman/podman.sock",
  });
  assert.deepEqual(parseContainerHost("/tmp/p.sock", "me"), {
    kind: "unix",
    socketPath: "/tmp/p.sock",
  });
});

Deno.test("parseContainerHost: malformed values are usage errors naming the source", () => {
  for (
    const bad of [
      "tcp://host:8080",
      "ssh://host:abc/run/p.sock",
      "ssh://host:/run/p.sock",
      "ssh://host:70000/run/p.sock",
      "ssh://host",
      "ssh://host/",
      "ssh://u:pw@host/run/p.sock",
      "unix://relative.sock",
      "host.example.com",
    ]
  ) {
    const err = (() => {
      try {
        parseContainerHost(bad, "me", "CONTAINER_HOST");
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof ContainerHostError, `${bad}: ${err}`);
    assert.ok(err instanceof UsageError);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /^CONTAINER_HOST: /);
  }
});
