import type { AppContext, Handlers, StreamHandlers } from "../context.js";
import { ok } from "../context.js";
import { listArtifacts, openArtifact, openUploadFile } from "../../board/files.js";
import { serveBytes } from "../bytes.js";

export function fileRoutes(app: AppContext): Pick<Handlers, "jobsArtifacts"> {
  return {
    async jobsArtifacts({ id }) {
      return ok({ artifacts: await listArtifacts(app.store, id) });
    },
  };
}

/** The byte routes: a file found (or a 404 JSON error, before any byte), then its bytes. */
export function fileStreams(app: AppContext): Pick<StreamHandlers, "jobsArtifact" | "uploadsFile"> {
  return {
    async jobsArtifact({ id, name }, http) {
      await serveBytes(http, await openArtifact(app.store, id, name), app.log);
    },
    async uploadsFile({ id, name }, http) {
      await serveBytes(http, await openUploadFile(app.store, id, name), app.log);
    },
  };
}
