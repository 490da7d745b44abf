// Deno entry for one Edge Function (run by local/gateway/edge-functions.ts). Plain JS so Node's
// type check leaves it alone. Hosted Supabase decides where a function listens; here
// Deno.serve is pointed at the port the gateway chose, then the function's own index.ts is
// loaded unchanged. The ready line on stdout tells the gateway the function can take requests.
const port = Number(Deno.env.get("EDGE_FUNCTION_PORT"));
const entrypoint = Deno.env.get("EDGE_FUNCTION_ENTRYPOINT");
const originalServe = Deno.serve.bind(Deno);

Deno.serve = (first, second) => {
  let options = {};
  let handler = second;
  if (typeof first === "function") handler = first;
  else {
    options = first ?? {};
    handler = second ?? first?.handler;
  }
  return originalServe(
    {
      ...options,
      port,
      hostname: "127.0.0.1",
      onListen: () => console.log(`__EDGE_FUNCTION_READY__ ${port}`),
    },
    handler,
  );
};

// `EdgeRuntime.waitUntil(promise)`, as the hosted Edge runtime offers it: the promise runs on
// after the response; the function's code calls the same global on both. A task that fails
// is logged and never takes the process down; tasks still running at shutdown get a bounded
// grace period (under the 3 s the gateway allows before SIGKILL), and whatever they leave
// undone is what the work's own recovery (the webhook's inbox sweep) is for.
const pending = new Set();
const SHUTDOWN_GRACE_MS = Number(Deno.env.get("EDGE_FUNCTION_SHUTDOWN_GRACE_MS") ?? 2000);
globalThis.EdgeRuntime = Object.freeze({
  waitUntil(promise) {
    const task = Promise.resolve(promise).catch((error) => {
      console.error(`background task failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    });
    pending.add(task);
    task.finally(() => pending.delete(task));
    return promise;
  },
});

let exiting = false;
/**
 * Exits once pending background tasks settle, or after the grace period. `beforeunload`
 * first, with the reason, as the hosted runtime tells functions it is about to stop them.
 */
async function shutDown(reason) {
  if (exiting) return;
  exiting = true;
  globalThis.dispatchEvent(new CustomEvent("beforeunload", { detail: { reason } }));
  if (pending.size > 0) {
    let timer;
    const grace = new Promise((resolve) => (timer = setTimeout(resolve, SHUTDOWN_GRACE_MS)));
    await Promise.race([Promise.allSettled([...pending]), grace]);
    clearTimeout(timer);
    if (pending.size > 0) console.error(`stopping with ${pending.size} background task(s) unfinished (${reason})`);
  }
  Deno.exit(0);
}
Deno.addSignalListener("SIGTERM", () => shutDown("termination"));
Deno.addSignalListener("SIGINT", () => shutDown("termination"));

// The gateway holds our stdin open; when it goes away (even killed outright) stdin closes
// and this function exits with it, so no Deno process outlives the stack.
(async () => {
  for await (const _ of Deno.stdin.readable) { /* nothing is ever sent */ }
  await shutDown("stdin closed");
})();

await import(new URL(entrypoint, "file://").href);
