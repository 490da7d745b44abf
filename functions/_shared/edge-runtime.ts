/**
 * Background work after the response, through the Edge runtime's own API: on hosted Supabase
 * `EdgeRuntime.waitUntil` keeps the function alive until the promise settles (within the
 * runtime's wall-clock limit); locally, local/gateway/serve-function.js offers the same global,
 * so function code is the same on both.
 */

interface EdgeRuntimeGlobal {
  waitUntil(promise: Promise<unknown>): void;
}

/** Runs `task` after the response is sent. Fails loudly where no Edge runtime offers it. */
export function waitUntil(task: Promise<unknown>): void {
  const runtime = (globalThis as { EdgeRuntime?: EdgeRuntimeGlobal }).EdgeRuntime;
  if (!runtime) {
    throw new Error("EdgeRuntime.waitUntil is missing: run under the Supabase Edge runtime or `npm start`.");
  }
  runtime.waitUntil(task);
}
