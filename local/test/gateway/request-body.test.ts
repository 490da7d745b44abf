/**
 * Request bodies are bounded before they are buffered, on every path, with or without a key,
 * and `Expect: 100-continue` works (curl sends it for bodies over 1 MB). Raw node:http
 * requests, so the test controls exactly what is sent and when.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import { API_BODY_LIMIT, FUNCTIONS_BODY_LIMIT } from "../../gateway/request-body.ts";
import { type StackUnderTest, stackUnderTest } from "./support.ts";

let stack: StackUnderTest;
before(async () => {
  stack = await stackUnderTest();
});
after(async () => {
  await stack.close();
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
  /** Whether the gateway sent "100 Continue" first. */
  continued: boolean;
  /** Body bytes the client had written when the answer arrived. */
  sent: number;
}

interface Send {
  path: string;
  headers?: Record<string, string>;
  /** Declared Content-Length; the body itself is only sent when `body` is given. */
  contentLength?: number;
  body?: Buffer;
  /** Stream this many bytes, chunked (no length), stopping as soon as an answer arrives. */
  chunked?: number;
  /** Send `body` only after "100 Continue". */
  expectContinue?: boolean;
}

/** The final response in `text`, once it is complete (Content-Length or chunked). */
function parseResponse(text: string): Omit<Answer, "continued" | "sent"> | undefined {
  const split = text.indexOf("\r\n\r\n");
  const head = /^HTTP\/1\.1 (\d{3}) /.exec(text);
  if (!head || split < 0) return undefined;
  const headers: Record<string, string> = {};
  for (const line of text.slice(0, split).split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let payload = text.slice(split + 4);
  if (headers["transfer-encoding"] === "chunked") {
    if (!payload.endsWith("0\r\n\r\n")) return undefined;
    let decoded = "";
    for (;;) {
      const end = payload.indexOf("\r\n");
      const size = parseInt(payload.slice(0, end), 16);
      if (!size) break;
      decoded += payload.slice(end + 2, end + 2 + size);
      payload = payload.slice(end + 2 + size + 2);
    }
    payload = decoded;
  } else if (Buffer.byteLength(payload) < Number(headers["content-length"] ?? 0)) {
    return undefined;
  }
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(payload) as Record<string, unknown>;
  } catch {
    body = { unparsed: payload };
  }
  return { status: Number(head[1]), headers, body };
}

/**
 * One request over a raw socket, so the test controls exactly what is sent and when, and
 * sees an interim "100 Continue". Keep-alive, as curl and browsers send it.
 */
function send(options: Send): Promise<Answer> {
  const url = new URL(options.path, stack.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    let received = "";
    let sent = 0;
    let continued = false;
    let answered = false;
    const lines = [`POST ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`, "Content-Type: application/json"];
    for (const [name, value] of Object.entries(options.headers ?? {})) lines.push(`${name}: ${value}`);
    if (options.chunked !== undefined) lines.push("Transfer-Encoding: chunked");
    else lines.push(`Content-Length: ${options.contentLength ?? options.body?.length ?? 0}`);
    if (options.expectContinue) lines.push("Expect: 100-continue");
    const writeBody = () => {
      if (options.body) {
        sent += options.body.length;
        socket.write(options.body);
      }
    };

    socket.on("data", (data: Buffer) => {
      received += data.toString("utf8");
      if (!continued && /^HTTP\/1\.1 100 /.test(received) && received.includes("\r\n\r\n")) {
        continued = true;
        received = received.slice(received.indexOf("\r\n\r\n") + 4);
        writeBody();
      }
      if (/^HTTP\/1\.1 [2-5]\d\d /.test(received)) answered = true;
      const response = parseResponse(received);
      if (response) {
        socket.destroy();
        resolve({ ...response, continued, sent });
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => reject(new Error(`no complete answer from ${options.path} (sent ${sent} bytes): ${JSON.stringify(received.slice(0, 200))}`)));

    socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    if (options.chunked !== undefined) {
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]);
      const pump = () => {
        while (!answered && !socket.destroyed && sent < options.chunked!) {
          sent += chunk.length;
          if (!socket.write(framed)) return void socket.once("drain", pump);
        }
        if (!answered && !socket.destroyed) socket.write("0\r\n\r\n");
      };
      pump();
    } else if (!options.expectContinue && options.body) {
      writeBody();
    }
    // Otherwise: headers only (or waiting for 100 Continue), so an answer proves the body was not needed.
  });
}

const apiHeaders = () => ({ apikey: stack.anonKey, Authorization: `Bearer ${stack.anonKey}`, "X-Supabase-Api-Version": "2024-01-01" });

/** Each service's 413 envelope. */
function assertEnvelope(path: string, body: Record<string, unknown>): void {
  if (path.startsWith("/rest/v1/")) {
    assert.deepEqual(Object.keys(body).sort(), ["code", "details", "hint", "message"], path);
    assert.equal(body.code, "PT413");
  } else if (path.startsWith("/auth/v1/")) {
    // GoTrue's two shapes: {code, message} when X-Supabase-Api-Version asks for it, else {code: status, error_code, msg}.
    if (typeof body.code === "string") assert.equal(body.code, "request_entity_too_large", path);
    else assert.equal(body.error_code, "request_entity_too_large", path);
  } else if (path.startsWith("/functions/v1/")) {
    assert.equal(body.code, 413, path);
    assert.equal(typeof body.message, "string");
  } else {
    assert.equal(typeof body.message, "string", path);
  }
}

const PATHS: Array<[string, number]> = [
  ["/rest/v1/rpc/get_credit_balance", API_BODY_LIMIT],
  ["/rest/v1/organizations", API_BODY_LIMIT],
  ["/auth/v1/signup", API_BODY_LIMIT],
  ["/auth/v1/token?grant_type=password", API_BODY_LIMIT],
  ["/functions/v1/stripe-webhook", FUNCTIONS_BODY_LIMIT],
  ["/functions/v1/billing/credits/consume", FUNCTIONS_BODY_LIMIT],
  ["/not-a-service", API_BODY_LIMIT],
];

describe("request bodies are bounded before they are buffered", () => {
  test("a declared Content-Length over the limit gets 413 in the service's envelope without the body being sent, with or without a key", { timeout: 60_000 }, async () => {
    for (const [path, limit] of PATHS) {
      for (const headers of [apiHeaders(), {}]) {
        const answer = await send({ path, headers, contentLength: limit + 1 });
        assert.equal(answer.status, 413, `${path}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.sent, 0, "answered from the headers alone");
        assertEnvelope(path, answer.body);
      }
    }
  });

  test("a chunked body (no length) is counted while it streams: 413 once past the limit, long before it ends", { timeout: 60_000 }, async () => {
    for (const [path, limit] of PATHS) {
      const answer = await send({ path, headers: apiHeaders(), chunked: 200 * 1024 * 1024 });
      assert.equal(answer.status, 413, `${path}: ${JSON.stringify(answer.body)}`);
      assertEnvelope(path, answer.body);
      assert.ok(answer.sent > limit, "the limit was passed");
      assert.ok(answer.sent < 100 * 1024 * 1024, `${path}: answered after ${answer.sent} bytes of a 200 MB body`);
    }
  });

  test("a body within the limit still reaches the service, declared or chunked", { timeout: 60_000 }, async () => {
    const declared = await send({ path: "/auth/v1/token?grant_type=password", headers: apiHeaders(), body: Buffer.from(JSON.stringify({ email: "nobody@example.test", password: "wrong password" })) });
    assert.equal(declared.status, 400);
    assert.equal(declared.body.code, "invalid_credentials");
    const chunked = await send({ path: "/rest/v1/rpc/no_such_function", headers: apiHeaders(), chunked: API_BODY_LIMIT });
    assert.ok(chunked.status !== 413, "exactly the limit is accepted");
  });
});

describe("Expect: 100-continue", () => {
  test("a small body with Expect: 100-continue is invited and served, on REST, auth and a function", { timeout: 60_000 }, async () => {
    const body = Buffer.from(JSON.stringify({ email: "nobody@example.test", password: "wrong password" }));
    const auth = await send({ path: "/auth/v1/token?grant_type=password", headers: apiHeaders(), contentLength: body.length, body, expectContinue: true });
    assert.equal(auth.continued, true);
    assert.equal(auth.status, 400);
    assert.equal(auth.body.code, "invalid_credentials");

    const rpcBody = Buffer.from(JSON.stringify({ p_organization_id: "not-a-uuid" }));
    const rest = await send({ path: "/rest/v1/rpc/get_credit_balance", headers: apiHeaders(), contentLength: rpcBody.length, body: rpcBody, expectContinue: true });
    assert.equal(rest.continued, true);
    assert.ok(rest.status >= 400 && rest.status < 500, JSON.stringify(rest.body));

    // The proxy reads the body and forwards it: 200, not the 502 a forwarded Expect header caused.
    const fn = await send({ path: "/functions/v1/health", headers: apiHeaders(), contentLength: body.length, body, expectContinue: true });
    assert.equal(fn.continued, true);
    assert.equal(fn.status, 200, JSON.stringify(fn.body));
    assert.deepEqual(fn.body, { status: "ok" });
  });

  test("an oversized body with Expect: 100-continue gets 413 and is never invited", { timeout: 60_000 }, async () => {
    for (const [path, limit] of PATHS) {
      const answer = await send({ path, headers: apiHeaders(), contentLength: limit + 1, body: Buffer.alloc(16), expectContinue: true });
      assert.equal(answer.status, 413, path);
      assert.equal(answer.continued, false, `${path}: no 100 Continue`);
      assert.equal(answer.sent, 0);
      assertEnvelope(path, answer.body);
    }
  });
});
