export * from "./lib/errors/mod.ts";
export * from "./lib/executors/mod.ts";
export * from "./lib/jobspec/mod.ts";
export * from "./lib/plan/mod.ts";
export * from "./lib/archive/mod.ts";
export * from "./lib/progress/mod.ts";
export * from "./lib/relay/mod.ts";
