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

// The gateway holds our stdin open; when it goes away (even killed outright) stdin closes
// and this function exits with it, so no Deno process outlives the stack.
(async () => {
  for await (const _ of Deno.stdin.readable) { /* nothing is ever sent */ }
  Deno.exit(0);
})();

await import(new URL(entrypoint, "file://").href);
