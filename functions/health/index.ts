/**
 * Liveness probe for the Edge runtime: answers {"status":"ok"} to any request, so the local
 * stack (and a deployed project) can check that functions are being served.
 */
Deno.serve(() =>
  new Response(JSON.stringify({ status: "ok" }), {
    headers: { "Content-Type": "application/json" },
  })
);
