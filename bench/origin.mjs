// The tiny origin: a Node HTTP server on loopback answering a small JSON body to any
// path and method. It verifies nothing (signatures, tokens): it only has to be cheap
// and constant, so that what the cases differ by is the Worker in front of it.
// One exception: a ZSky-style `POST .../generate` gets a fresh `job_id`, because zgate
// records job ownership at submit and answers 404 to polls of jobs it never saw. A
// generate whose prompt is `complete-after:<n>` (the cost bench's job cycle) makes a job
// whose n-th poll answers `completed` with a result URL on this origin, served as a
// small PNG; every other job stays `processing`.
//
// Run as its own process (`node bench/origin.mjs`) so it does not share an event loop
// with autocannon; `startOrigin()` does that and returns its URL and pid.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

// "processing", not "completed": a completed poll makes zgate pull and store the result.
const BODY = Buffer.from(JSON.stringify({ id: "job_bench", status: "processing" }));
let jobs = 0;
// Jobs that complete: id -> { polls, completeAfter }.
/** @type {Map<string, { polls: number, completeAfter: number }>} */
const completing = new Map();
// A 1x1 PNG: the smallest result zgate stores (it checks the media type, not the bytes).
const RESULT = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=", "base64");
/** @typedef {{ type: string, body: Buffer }} Answer */
/** @type {(value: unknown) => Answer} */
const json = (value) => ({ type: "application/json", body: Buffer.from(JSON.stringify(value)) });

/**
 * @param {{ method?: string, url?: string }} req
 * @param {string} requestBody
 * @returns {Answer}
 */
function answerFor({ method, url = "/" }, requestBody) {
  if (method === "POST" && url.endsWith("/generate")) {
    const jobId = `job_${process.pid}_${++jobs}`;
    const completeAfter = Number(/"complete-after:(\d+)"/.exec(requestBody)?.[1] ?? 0);
    if (completeAfter > 0) completing.set(jobId, { polls: 0, completeAfter });
    return json({ job_id: jobId, status: "queued" });
  }
  if (url.startsWith("/v1/bench-results/")) return { type: "image/png", body: RESULT };
  const polled = /^\/v1\/jobs\/([^/?]+)/.exec(url)?.[1];
  const job = polled && completing.get(polled);
  if (job && ++job.polls >= job.completeAfter)
    return json({ job_id: polled, status: "completed", result_url: `/v1/bench-results/${polled}` });
  return { type: "application/json", body: BODY };
}

/**
 * Answers one request as this origin does, once its body is read (so keep-alive
 * connections stay usable); `deliver` is handed the sending, to send now or later
 * (bench/in-flight.mjs holds some).
 * @param {import("node:http").IncomingMessage} req
 * @param {import("node:http").ServerResponse} res
 * @param {(send: () => void) => void} [deliver]
 */
export function answerRequest(req, res, deliver = (send) => send()) {
  /** @type {Buffer[]} */
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const { type, body } = answerFor(req, Buffer.concat(chunks).toString());
    deliver(() => res.writeHead(200, { "content-type": type, "content-length": body.length }).end(body));
  });
}

function serve() {
  const server = createServer((req, res) => answerRequest(req, res));
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () => {
    // The parent reads this one line to learn the port.
    const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
    process.stdout.write(`${JSON.stringify({ port })}\n`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  // If the harness dies without stopping us, do not linger.
  process.on("disconnect", stop);
}

/**
 * Starts the origin in a child process; resolves once it listens.
 * @returns {Promise<{ url: string, pid: number, stop: () => Promise<void> }>}
 */
export function startOrigin() {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("origin did not start within 10 s")), 10_000);
    child.once("exit", (code) => reject(new Error(`origin exited early (${code})`)));
    createInterface({ input: /** @type {import("node:stream").Readable} */ (child.stdout) }).once("line", (line) => {
      clearTimeout(timer);
      const { port } = JSON.parse(line);
      resolve({
        url: `http://127.0.0.1:${port}`,
        pid: /** @type {number} */ (child.pid),
        stop: () => stopChild(child),
      });
    });
  });
}

/**
 * @param {import("node:child_process").ChildProcess} child
 * @returns {Promise<void>}
 */
function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill("SIGKILL"), 3000);
    child.once("exit", () => {
      clearTimeout(force);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) serve();
