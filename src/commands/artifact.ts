// `teamwork jobs artifact ID [NAME] [-o FILE]`: a file a job stored (a report, a thumbnail),
// fetched from the daemon of this host whichever node of a team made it (the bytes are in
// the database). Written to FILE whole or not at all (FILE.partial, then renamed), or to
// stdout when it is not a terminal; a binary file is never dumped on a terminal. The bytes are
// counted and hashed on the way, and checked against the length and SHA-256 the store
// recorded: a transfer cut short is an error, never a short file.
//
// Also `enqueue … --out FILE`, which saves a job's artifact once the job completes.

import { createHash } from "node:crypto";
import { once } from "node:events";
import { createWriteStream, renameSync, rmSync } from "node:fs";
import type { Command } from "commander";
import { TeamworkError, invalid } from "../lib/errors.js";
import { formatBytes, isTextMediaType, type FileInfo } from "../protocol/files.js";
import type { Download } from "../client/client.js";
import { safe } from "../output/safe.js";
import type { CliContext } from "./context.js";
import { parseId } from "./args.js";

export function registerJobArtifact(jobs: Command, ctx: CliContext): void {
  jobs
    .command("artifact")
    .description("fetch a file a job stored (a report, a thumbnail), whichever node made it")
    .argument("<id>", "job id", parseId)
    .argument("[name]", "the artifact's name (may be left out when the job stored one)")
    .option("-o, --out <file>", "write it to this file (- for stdout)")
    .option("--list", "list the job's artifacts instead")
    .addHelpText(
      "after",
      "\nWithout -o the bytes go to stdout, unless stdout is a terminal and the file is not text.\n\nExamples:\n  $ teamwork jobs artifact 42 -o report.html\n  $ teamwork jobs artifact 43 photo-256.png > thumb.png\n  $ teamwork jobs artifact 42 --list",
    )
    .action(async (id: number, name: string | undefined, o: { out?: string; list?: boolean }) => {
      const client = await ctx.client();
      if (o.list) {
        const artifacts = await client.jobs.artifacts(id);
        ctx.out.result(artifacts, (list) => {
          if (list.length === 0) return ctx.out.line(`job ${id} stored no artifacts`);
          ctx.out.table(
            [
              { key: "name", title: "NAME" },
              { key: "type", title: "TYPE" },
              { key: "size", title: "SIZE", align: "right" },
              { key: "created", title: "CREATED" },
            ],
            list.map((a) => ({ name: safe(a.name), type: safe(a.mediaType), size: formatBytes(a.size), created: a.createdAt })),
          );
        });
        return;
      }
      if (ctx.out.json && (o.out === undefined || o.out === "-")) throw invalid("with --json, stdout carries only JSON: give -o FILE for the bytes");
      if (name === undefined) {
        const artifacts = await client.jobs.artifacts(id);
        if (artifacts.length === 0) throw new TeamworkError("not_found", `job ${id} stored no artifacts`);
        if (artifacts.length > 1) {
          throw invalid(`job ${id} stored ${artifacts.length} artifacts; name one:\n${artifacts.map((a) => `  ${a.name}  (${a.mediaType}, ${formatBytes(a.size)})`).join("\n")}`, `teamwork jobs artifact ${id} ${artifacts[0]!.name}`);
        }
        name = artifacts[0]!.name;
      }
      await saveDownload(ctx, await client.jobs.artifact(id, name), o.out);
    });
}

/**
 * Writes a download to `out` (a path, or "-"/undefined for stdout) and reports it; the bytes
 * are checked against the recorded length and SHA-256 on the way.
 */
export async function saveDownload(ctx: CliContext, dl: Download, out: string | undefined): Promise<void> {
  const info: Omit<FileInfo, "createdAt"> = { name: dl.name, mediaType: dl.mediaType, size: dl.size, sha256: dl.sha256 };
  const check = verifier(dl);
  if (out === undefined || out === "-") {
    const stdout = ctx.out.bytes;
    if (ctx.out.tty) {
      if (!isTextMediaType(dl.mediaType)) {
        dl.body.destroy();
        throw invalid(`refusing to write ${dl.name} (${dl.mediaType}, ${formatBytes(dl.size)}) to the terminal`, "give -o FILE, or send stdout to a file or a pipe (> file)");
      }
      // Text on a terminal goes through the same guard as every other output (no escape sequences).
      const chunks: Buffer[] = [];
      await check(dl.body, (chunk) => void chunks.push(chunk));
      ctx.out.line(safe(Buffer.concat(chunks).toString("utf8"), { multiline: true }));
      return;
    }
    await check(dl.body, async (chunk) => {
      if (!stdout.write(chunk)) await once(stdout, "drain");
    });
    return;
  }
  const partial = `${out}.partial`;
  const file = createWriteStream(partial, { mode: 0o644 });
  try {
    await once(file, "open");
    await check(dl.body, async (chunk) => {
      if (!file.write(chunk)) await once(file, "drain");
    });
    file.end();
    await once(file, "finish");
    renameSync(partial, out);
  } catch (err) {
    file.destroy();
    rmSync(partial, { force: true });
    if ((err as NodeJS.ErrnoException).code && !(err instanceof TeamworkError)) throw new TeamworkError("invalid_input", `cannot write ${out}: ${(err as Error).message}`);
    throw err;
  }
  ctx.out.result({ ...info, path: out }, () => ctx.out.line(`Saved ${safe(dl.name)} (${safe(dl.mediaType)}, ${formatBytes(dl.size)}) to ${safe(out)}`));
}

/** Reads a download's body through `sink`, counting and hashing; throws if it ends short or differs. */
function verifier(dl: Download): (body: AsyncIterable<Buffer>, sink: (chunk: Buffer) => unknown) => Promise<void> {
  return async (body, sink) => {
    const hash = createHash("sha256");
    let got = 0;
    try {
      for await (const chunk of body) {
        got += chunk.length;
        hash.update(chunk);
        await sink(chunk);
      }
    } catch (err) {
      if (err instanceof TeamworkError) throw err;
      throw new TeamworkError("unavailable", `the transfer of ${dl.name} was cut after ${got} of ${dl.size} bytes (${(err as Error).message})`);
    }
    if (got !== dl.size) throw new TeamworkError("unavailable", `the transfer of ${dl.name} was cut after ${got} of ${dl.size} bytes`);
    if (hash.digest("hex") !== dl.sha256) throw new TeamworkError("internal", `${dl.name} arrived whole but its SHA-256 differs from the one stored`);
  };
}
