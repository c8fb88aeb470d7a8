// POST /jobs on one HTTP keep-alive connection over the daemon's Unix socket: how the bench
// enqueues over HTTP (http-enqueue.mjs, paired-builds.mjs --http, profile-builds.mjs --http).
import { Agent, request } from "node:http";

/** post(spec) resolves once the reply's body is read (rejects on a status other than 2xx). */
export function httpPoster(socketPath) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const post = (spec) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify(spec);
      const req = request({ socketPath, path: "/jobs", method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => (res.statusCode >= 200 && res.statusCode < 300 ? resolve() : reject(new Error(`POST /jobs: ${res.statusCode} ${Buffer.concat(chunks)}`))));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  return { post, close: () => agent.destroy() };
}
