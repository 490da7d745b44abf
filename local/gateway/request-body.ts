/**
 * Request bodies are bounded before they are buffered, on every path, with or without a key:
 * a declared Content-Length over the limit is refused from the headers alone, and a chunked
 * body (no length) is counted while it streams and refused as soon as it passes the limit.
 * `Expect: 100-continue` is honoured: an oversized body is refused before the client sends it.
 * A request Node cannot parse at all gets a JSON answer too.
 *
 * Limits: 1 MiB for `/rest/v1`, `/auth/v1` and anything else (GoTrue's own limit, 1 << 20);
 * 6 MiB for `/functions/v1`, where hosted Supabase documents no number: it is the common
 * ceiling of serverless platforms ("a few MB") and far above what the product's functions
 * take (the billing function refuses bodies over 16 KiB itself; Stripe's events are smaller).
 */
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { AuthError, authErrorResponse } from "./gotrue-errors.ts";

export const API_BODY_LIMIT = 1024 * 1024;
export const FUNCTIONS_BODY_LIMIT = 6 * 1024 * 1024;

type Service = "rest" | "auth" | "functions" | "other";

function serviceOf(pathname: string): Service {
  if (pathname.startsWith("/rest/v1/")) return "rest";
  if (pathname.startsWith("/auth/v1/")) return "auth";
  if (pathname.startsWith("/functions/v1/")) return "functions";
  return "other";
}

/** The most bytes a request to this path may carry in its body. */
export function bodyLimitFor(pathname: string): number {
  return serviceOf(pathname) === "functions" ? FUNCTIONS_BODY_LIMIT : API_BODY_LIMIT;
}

/**
 * 413 in the envelope of the service the path belongs to: PostgREST's `{code, message,
 * details, hint}` (code `PT413`, PostgREST's own PTnnn-to-status convention: it has no code for
 * this), GoTrue's `request_entity_too_large`, the functions relay's `{code, message}`, and
 * Kong's `{message}` elsewhere. No `Connection: close`: closing at once would reset a
 * connection the client is still writing to, and it would lose this answer. The rest of the
 * body is discarded as it arrives (never buffered) until @hono/node-server's lingering close
 * gives up on it (64 MiB or half a second) and closes the connection.
 */
export function tooLargeResponse(request: Request): Response {
  const pathname = new URL(request.url).pathname;
  const limit = bodyLimitFor(pathname);
  const message = `Request body too large (max ${limit} bytes)`;
  const headers = { "Content-Type": "application/json" };
  let response: Response;
  switch (serviceOf(pathname)) {
    case "rest":
      response = new Response(JSON.stringify({ code: "PT413", message, details: null, hint: "Send a smaller body, or split the call." }), {
        status: 413,
        headers: { ...headers, "Content-Type": "application/json; charset=utf-8" },
      });
      break;
    case "auth":
      response = authErrorResponse(request, new AuthError(413, "request_entity_too_large", message));
      break;
    case "functions":
      response = new Response(JSON.stringify({ code: 413, message }), { status: 413, headers });
      break;
    default:
      response = new Response(JSON.stringify({ message }), { status: 413, headers });
  }
  return response;
}

const limiters = {
  api: bodyLimit({ maxSize: API_BODY_LIMIT, onError: (c) => tooLargeResponse(c.req.raw) }),
  functions: bodyLimit({ maxSize: FUNCTIONS_BODY_LIMIT, onError: (c) => tooLargeResponse(c.req.raw) }),
};

/**
 * Bounds the body by the path's limit, then reads it in full before any handler runs. A
 * handler that answers without reading the body (401 for a missing key, 405) would otherwise
 * answer while the client is still sending, and the connection could close under it: the
 * client would see a network error, not the answer.
 *
 * A body whose length is declared (Content-Length, no Transfer-Encoding; Node's parser has
 * already refused a malformed or conflicting one) is judged from the header, exactly as hono's
 * body-limit middleware judges it, and read through @hono/node-server's direct path, straight
 * from Node's stream into one buffer. That is the common case (every client here sends a
 * length) and the cheap one: the middleware's first step, asking the request for its body
 * stream, makes the adapter build a web ReadableStream over Node's stream and a full Request
 * around it, which cost about a tenth of the gateway's time per RPC call. A chunked body has
 * no length to judge, so hono's middleware counts it while it streams and stops it at the
 * limit. GET and HEAD carry no body the handlers could read (the adapter gives them none), as
 * before.
 */
export const limitRequestBodies: MiddlewareHandler = async (c, next) => {
  const request = c.req.raw;
  if (request.method === "GET" || request.method === "HEAD") return next();
  const declared = request.headers.get("content-length");
  if (declared !== null && !request.headers.has("transfer-encoding")) {
    if (parseInt(declared, 10) > bodyLimitFor(c.req.path)) return tooLargeResponse(request);
    const body = await request.arrayBuffer();
    c.req.raw = new Request(request.url, { method: request.method, headers: request.headers, body });
    return next();
  }
  return (serviceOf(c.req.path) === "functions" ? limiters.functions : limiters.api)(c, async () => {
    if (c.req.raw.body && !c.req.raw.bodyUsed) c.req.raw = new Request(c.req.raw, { body: await c.req.raw.arrayBuffer() });
    await next();
  });
};

/**
 * Node answers `Expect: 100-continue` with "100 Continue" by itself unless the server handles
 * 'checkContinue'. Here the interim response is sent only when the declared body fits; an
 * oversized one goes straight to the handlers, whose body limit answers 413 from the headers,
 * so the client never sends the body.
 */
export function honourExpectContinue(server: Server): void {
  server.on("checkContinue", (request: IncomingMessage, response: ServerResponse) => {
    const declared = Number(request.headers["content-length"]);
    const pathname = new URL(request.url ?? "/", "http://localhost").pathname;
    if (!(Number.isFinite(declared) && declared > bodyLimitFor(pathname))) response.writeContinue();
    server.emit("request", request, response);
  });
}

/**
 * A request Node cannot parse (headers or URL over Node's 16 KiB limit, malformed syntax) never
 * reaches a service; Node's own answer has no body. This one says what went wrong in JSON, in
 * Kong's `{message}` shape, as the hosted gateway answers at that layer.
 */
export function answerUnparseableRequests(server: Server): void {
  server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || (error as { code?: string }).code === "ECONNRESET") return void socket.destroy();
    const status = error.code === "HPE_HEADER_OVERFLOW" ? 431 : 400;
    const body = JSON.stringify({ message: status === 431 ? "Request header fields too large" : "Bad request" });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
