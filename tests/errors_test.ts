import assert from "node:assert/strict";
import {
  exitCodeOf,
  GangplankError,
  InterruptedError,
  signalExitCode,
  UsageError,
} from "../lib/errors/mod.ts";

Deno.test("exit codes: usage errors are 2, interrupts are 128+signal, others 1", () => {
  assert.equal(exitCodeOf(new UsageError("bad flag")), 2);
  assert.equal(exitCodeOf(new InterruptedError("SIGINT")), 130);
  assert.equal(exitCodeOf(new InterruptedError("SIGTERM")), 143);
  assert.equal(exitCodeOf(new GangplankError("boom")), 1);
  assert.equal(exitCodeOf(new Error("plain")), 1);
  assert.equal(new UsageError("x").name, "UsageError");
});

Deno.test("signalExitCode: 128 + the signal's number, as a shell reports it", () => {
  assert.equal(signalExitCode("SIGKILL"), 137);
  assert.equal(signalExitCode("SIGTERM"), 143);
  assert.equal(signalExitCode("SIGINT"), 130);
});
