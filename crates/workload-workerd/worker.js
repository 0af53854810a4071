// The smallest Worker around the workload core (src/lib.rs): it copies the
// request into the module's memory and the core's response out of it. Every
// status, header value and body byte comes from the core.
import core from "./core.wasm";

// Instantiated once per isolate, at module evaluation: kv's state lives in this
// instance's memory for as long as the isolate does.
const { memory, eb_alloc, eb_handle } = new WebAssembly.Instance(core, {}).exports;
const utf8 = new TextEncoder();

export default {
  async fetch(request, env) {
    // The request target as sent (path and query): the URL after its authority.
    const url = request.url;
    const target = url.slice(url.indexOf("/", url.indexOf("//") + 2));
    const parts = [
      utf8.encode(env.WORKLOAD),
      utf8.encode(request.method),
      utf8.encode(target),
      new Uint8Array(await request.arrayBuffer()),
    ];
    const total = parts[0].length + parts[1].length + parts[2].length + parts[3].length;
    const input = eb_alloc(total) >>> 0;
    // A view made after the call: a memory growth detaches older ones.
    const bytes = new Uint8Array(memory.buffer, input, total);
    let at = 0;
    for (const part of parts) {
      bytes.set(part, at);
      at += part.length;
    }
    const record = eb_handle(input, parts[0].length, parts[1].length, parts[2].length, parts[3].length) >>> 0;
    const [status, typeAt, typeLen, bodyAt, bodyLen] = new Uint32Array(memory.buffer, record, 5);
    // slice() copies out of the module's memory: the next request reuses it.
    const contentType = new TextDecoder().decode(new Uint8Array(memory.buffer, typeAt, typeLen));
    return new Response(memory.buffer.slice(bodyAt, bodyAt + bodyLen), {
      status,
      headers: { "content-type": contentType },
    });
  },
};
