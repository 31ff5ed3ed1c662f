/**
 * The source of the thread that serves `/metrics` over HTTP (metrics-listener.ts
 * starts it with `eval`). It parses requests and writes answers; the text itself
 * is built on the service's thread, which it asks by message for each scrape.
 *
 * Why a thread of its own: V8 keeps type feedback per isolate. A `node:http`
 * server on the service's thread feeds its sockets, requests and responses
 * through the same stream and event-emitter functions as gRPC's HTTP/2 streams,
 * so each scrape deoptimised them ("wrong map": Readable.read, flow, on,
 * Writable.write, EventEmitter's listeners — 46 deopts in a 15 s window, none
 * without the listener) and left them polymorphic: bench:ma's heartbeats cost
 * 1.12–1.20x with metrics on, though metrics and audit code were under 1 % of
 * the profile. A worker's isolate has its own feedback.
 *
 * Plain JavaScript in a string, not a module: the thread must start the same
 * way under tsx, vitest and the compiled build, and load nothing of the project.
 *
 * Messages in: `{ type: 'text', id, body }`, `{ type: 'failed', id }`, `{ type: 'stop' }`.
 * Messages out: `{ type: 'listening', port }`, `{ type: 'bind-failed', code, message }`,
 * `{ type: 'scrape', id }`, `{ type: 'stopped' }`.
 * workerData: `{ host, port, contentType }`.
 */
export const METRICS_HTTP_WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { createServer } = require('node:http');

const waiting = new Map();
let next = 0;

const server = createServer((req, res) => {
  if (req.method !== 'GET' || (req.url || '').split('?')[0] !== '/metrics') {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
    return;
  }
  const id = next++;
  waiting.set(id, res);
  // A client gone before the text is ready: nothing to answer.
  res.once('close', () => waiting.delete(id));
  parentPort.postMessage({ type: 'scrape', id });
});
server.headersTimeout = 10000;
server.requestTimeout = 10000;
server.maxConnections = 64;

parentPort.on('message', (m) => {
  if (m.type === 'stop') {
    server.close(() => parentPort.postMessage({ type: 'stopped' }));
    server.closeAllConnections();
    return;
  }
  const res = waiting.get(m.id);
  if (!res) return;
  waiting.delete(m.id);
  if (m.type === 'text') res.writeHead(200, { 'content-type': workerData.contentType }).end(m.body);
  else res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed; see the service log\n');
});

server.once('error', (err) => parentPort.postMessage({ type: 'bind-failed', code: err.code, message: err.message }));
server.listen(workerData.port, workerData.host, () => {
  const a = server.address();
  parentPort.postMessage({ type: 'listening', port: typeof a === 'object' && a ? a.port : workerData.port });
});
`;
