// Types for the ES module entry (index.mjs): the same declarations as index.d.cts.
export * from "./index.cjs";
