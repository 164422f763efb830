// The child side of a JavaScript code node; sandbox.py runs it as `node -e <this file> FD`.
// It reads {"code", "items", "n8n"} as JSON on stdin, runs the code as the body of an async
// function of `items`, and writes {"items": ...} or {"error": {"type", "message", "line"}} as
// JSON to file descriptor FD, so console.log stays free for the code's prints (the node's log).
// With "n8n" the code is n8n Code or Function node code: `items` and `$input.all()`, `first()`,
// `last()` are n8n items {json: ...}, and it may return such items, plain objects or one object.
// A custom node of the NODE runtime sends {"module", "items", "config", "context"} instead:
// `module` is CommonJS source whose `module.exports` is a function (items, config, context),
// plain or async, given `require` for Node's built-in modules; its result is the items.
// With the network on (A2N_CODE_NETWORK=on) the sandbox gives HTTP(S)_PROXY, the egress proxy and
// the only way out; Node ignores those variables, so fetch and the http(s) modules' default
// agents are sent through it first (see throughProxy).
"use strict";
const fs = require("fs");
const net = require("net");
const tls = require("tls");

const channel = Number(process.argv[1]);
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const HEADER_LINES = 2; // "async function anonymous(items\n) {\n" precedes the code
// n8n code runs inside a function of its own, so that it may declare `items` or `$input`:
// "function anonymous(items,$input\n) {\nreturn async function () {\n" precedes it.
const N8N_HEADER_LINES = 3;
// "function anonymous(module,exports,require\n) {\n" precedes a module's source
const MODULE_HEADER_LINES = 2;
let headerLines = HEADER_LINES;
const N8N_ITEM_KEYS = new Set(["json", "binary", "pairedItem"]);

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

// What n8n code returned as A2N's items: {json: ...} unwrapped, one object as a list of it.
function fromN8n(result) {
  const list = isObject(result) ? [result] : result;
  if (!Array.isArray(list)) return list;
  const wrapped = (item) =>
    isObject(item) && isObject(item.json) && Object.keys(item).every((k) => N8N_ITEM_KEYS.has(k));
  return list.map((item) => (wrapped(item) ? item.json : item));
}

async function runModule(payload) {
  const module = { exports: {} };
  new Function("module", "exports", "require", payload.module)(module, module.exports, require);
  if (typeof module.exports !== "function") {
    throw new TypeError(
      "the module must export a function: module.exports = async (items, config, context) => items",
    );
  }
  return module.exports(payload.items, payload.config, payload.context);
}

async function run(payload) {
  if (typeof payload.module === "string") {
    headerLines = MODULE_HEADER_LINES;
    return runModule(payload);
  }
  if (payload.n8n !== true) return new AsyncFunction("items", payload.code)(payload.items);
  headerLines = N8N_HEADER_LINES;
  const items = payload.items.map((json) => ({ json }));
  const $input = {
    all: () => items,
    first: () => items[0],
    last: () => items[items.length - 1],
  };
  const body = "return async function () {\n" + payload.code + "\n};";
  return fromN8n(await new Function("items", "$input", body)(items, $input)());
}

function describe(error) {
  if (!(error instanceof Error)) return { type: "Error", message: String(error), line: null };
  const match = /<anonymous>:(\d+):\d+/.exec(error.stack || "");
  const line = match ? Number(match[1]) - headerLines : null;
  return { type: error.name, message: error.message, line };
}

// With the network on, the sandbox's only way out is the egress proxy at HTTP(S)_PROXY, which
// Node ignores: fetch (undici, whose connections come from the dispatcher at DISPATCHER: an
// Agent once undici is loaded) and the http and https modules' default agents are replaced by
// agents whose every connection is a tunnel through the proxy: `CONNECT host:port` (http and
// https alike; the proxy applies the egress rules, and its 403 says why), then TLS inside it
// for https. A request given an agent of its own does not go through them (and reaches nothing).
const DISPATCHER = Symbol.for("undici.globalDispatcher.1");
const MAX_PROXY_HEAD = 16 * 1024;

function proxyFor(protocol) {
  const env = process.env;
  const url =
    protocol === "https:" ? env.HTTPS_PROXY || env.https_proxy : env.HTTP_PROXY || env.http_proxy;
  return url ? new URL(url) : null;
}

const unbracketed = (host) => host.replace(/^\[(.*)\]$/, "$1");

function throughProxy() {
  if (!proxyFor("https:") && !proxyFor("http:")) return;
  const http = require("http");
  const https = require("https");
  http.globalAgent = new (class extends http.Agent {
    createConnection(options, callback) {
      // The http client reads a socket only in flowing mode, and tunnel() hands it paused.
      tunnel("http:", options.host, options.port, (error, socket) =>
        callback(error, socket && socket.resume()),
      );
    }
  })({ keepAlive: true, timeout: 5000 }); // as Node's own default agents
  https.globalAgent = new (class extends https.Agent {
    createConnection(options, callback) {
      tunnel("https:", options.host, options.port, (error, socket) =>
        error ? callback(error) : secured(socket, options, callback),
      );
    }
  })({ keepAlive: true, timeout: 5000 });
  void globalThis.Headers; // loads Node's undici, which sets its default Agent at DISPATCHER
  const Agent = globalThis[DISPATCHER] && globalThis[DISPATCHER].constructor;
  if (typeof Agent !== "function") return;
  const connect = (options, callback) => {
    const https = options.protocol === "https:";
    const port = options.port || (https ? 443 : 80);
    tunnel(options.protocol, options.hostname, port, (error, socket) => {
      if (error || !https) return callback(error, socket);
      const host = unbracketed(options.hostname);
      const named = { servername: net.isIP(host) ? undefined : host, ALPNProtocols: ["http/1.1"] };
      secured(socket, named, callback);
    });
  };
  globalThis[DISPATCHER] = new Agent({ connect });
}

// TLS with `options` over a tunnel, handed on once the handshake is done.
function secured(socket, options, callback) {
  let done = false;
  const secure = tls.connect({ ...options, socket });
  secure.once("secureConnect", () => done || ((done = true), callback(null, secure)));
  secure.once("error", (error) => done || ((done = true), callback(error)));
}

// A connection through the proxy to host:port, established (the proxy answered 200).
function tunnel(protocol, host, port, callback) {
  const proxy = proxyFor(protocol);
  if (!proxy) return callback(new Error(`no proxy for ${protocol} (the network is off)`));
  const target = `${net.isIP(unbracketed(host)) === 6 ? `[${unbracketed(host)}]` : host}:${port}`;
  let done = false;
  const finish = (error, socket) => done || ((done = true), callback(error, socket));
  const socket = net.connect(Number(proxy.port) || 80, unbracketed(proxy.hostname));
  socket.on("error", (error) => finish(error));
  socket.once("connect", () =>
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`),
  );
  let head = Buffer.alloc(0);
  const onData = (chunk) => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf("\r\n\r\n");
    if (end < 0) {
      if (head.length > MAX_PROXY_HEAD) {
        socket.destroy();
        finish(new Error(`the egress proxy's answer to CONNECT ${target} is too large`));
      }
      return;
    }
    socket.pause();
    socket.removeListener("data", onData);
    const status = Number(head.subarray(0, end).toString("latin1").split(" ")[1]);
    if (status !== 200) return refused(socket, status, head.subarray(end + 4), target, finish);
    if (head.length > end + 4) socket.unshift(head.subarray(end + 4));
    finish(null, socket);
  };
  socket.on("data", onData);
}

// The proxy's refusal (403: the egress rules; 502: the host did not answer) with its reason.
function refused(socket, status, body, target, finish) {
  const chunks = [body];
  const fail = () => {
    const reason = Buffer.concat(chunks).toString("utf8").trim();
    const error = new Error(`the egress proxy refused ${target}: ${status} ${reason}`.trim());
    error.code = "EPROXYREFUSED";
    error.status = status;
    finish(error);
  };
  socket.on("data", (chunk) => chunks.push(chunk));
  socket.once("end", fail);
  socket.once("close", fail);
  socket.resume();
}

async function main() {
  let answer;
  try {
    throughProxy();
    const payload = JSON.parse(fs.readFileSync(0, "utf8"));
    answer = JSON.stringify({ items: await run(payload) });
  } catch (error) {
    answer = JSON.stringify({ error: describe(error) });
  }
  const bytes = Buffer.from(answer, "utf8");
  for (let offset = 0; offset < bytes.length; ) offset += fs.writeSync(channel, bytes, offset);
  process.exit(0); // timers the code left running must not hold the run open
}

main();
