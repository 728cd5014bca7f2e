export * from "./lib/errors/mod.ts";
export * from "./lib/executors/mod.ts";
