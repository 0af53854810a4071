// The `loader` variant's second Worker, used only for warm starts: each
// request gets a new isolate from workerd's Worker Loader (a fresh id every
// time, so nothing is reused), built from the same glue and module bytes as
// the served Worker; the request is forwarded into it. The new isolate
// compiles the module, evaluates the glue and instantiates the module itself.
import glue from "./worker.js";
import core from "./core.wasm";

let next = 0;

export default {
  async fetch(request, env) {
    const isolate = env.LOADER.get(`warm-${next++}`, () => ({
      compatibilityDate: env.COMPATIBILITY_DATE,
      mainModule: "worker.js",
      modules: { "worker.js": glue, "core.wasm": { wasm: core } },
      env: { WORKLOAD: env.WORKLOAD },
    }));
    return isolate.getEntrypoint().fetch(request);
  },
};
