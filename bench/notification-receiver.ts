/**
 * The notifications benchmark's receiver, in a process of its own so neither sender shares its
 * event loop: answers every POST 204 after reading the body, verifying nothing (the benchmark
 * measures delivery, not the receiver), and prints its URL once listening.
 */
import http from "node:http";

const server = http.createServer((request, response) => {
  request.resume();
  request.once("end", () => {
    response.writeHead(204);
    response.end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address && typeof address === "object") console.log(`listening on http://127.0.0.1:${address.port}`);
});
process.once("SIGTERM", () => server.close(() => process.exit(0)));
