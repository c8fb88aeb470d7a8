// The package's library entry: the client applications use (connect), and what a user's job
// module may import (defineJob). Both read one map of job types (JobTypes), which
// applications extend by declaration merging (docs/client.md).
export { connect } from "./client/entry.js";
export type { ConnectOptions } from "./client/connect.js";
export type {
  TeamworkClient,
  AnyJobType,
  EnqueueOptions,
  Enqueued,
  JobOf,
  JobRef,
  JobRequest,
  ListJobsOptions,
  PayloadFor,
  ResultFor,
  ScheduleInput,
  TaskChanges,
  TaskInput,
} from "./client/teamwork.js";
export { JobFailedError, NotAnswering } from "./client/errors.js";
export type { WaitOptions, WatchOptions } from "./client/watch.js";
export { TeamworkError, type ErrorCode } from "./lib/errors.js";
export type { JobTypes, JobType, PayloadOf, ResultOf } from "./protocol/job-types.js";
export type { ControlEvent, EventMap, EventName, StreamEvent } from "./protocol/events.js";
export type {
  Attachment,
  Board,
  CleanupStats,
  DaemonStatus,
  DigestPreview,
  Health,
  Job,
  JobAttemptError,
  JobHead,
  JobLogLine,
  JobStatus,
  JobSummary,
  JobWhy,
  Json,
  NodeInfo,
  QueueState,
  Schedule,
  Stats,
  Task,
  TaskEvent,
  TaskStatus,
  WhyCode,
} from "./protocol/types.js";
export { defineJob, PermanentJobError } from "./jobs/define.js";
export type { JobContext, JobDefinition, JobFile, JobFiles } from "./jobs/define.js";
export type { FileInfo } from "./protocol/files.js";
export type { Download } from "./client/client.js";
