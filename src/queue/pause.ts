// Pausing the queue: everything, or some job types. Running jobs finish; nothing new of a
// paused type starts. Kept in the store's meta table, so a pause survives a restart.

import type { Logger } from "../lib/logger.js";
import type { MetaStore } from "../store/types.js";

const PAUSED_KEY = "queue.paused";

export class QueuePause {
  private all = false;
  private readonly types = new Set<string>();
  /** The paused types as a list, made again only when they change (every claim carries it). */
  private list: string[] = [];

  constructor(
    private readonly meta: MetaStore,
    private readonly log: Logger,
  ) {}

  /** Takes back the state saved by the previous run. */
  async load(): Promise<void> {
    const saved = (await this.meta.get(PAUSED_KEY)) as { all?: boolean; types?: string[] } | null;
    if (!saved) return;
    this.all = Boolean(saved.all);
    this.types.clear();
    for (const t of saved.types ?? []) this.types.add(t);
    this.list = [...this.types];
  }

  get everything(): boolean {
    return this.all;
  }

  get pausedTypes(): ReadonlySet<string> {
    return this.types;
  }

  /** The paused types, as a list the caller must not change; a new list after each change. */
  get pausedTypeList(): readonly string[] {
    return this.list;
  }

  isPaused(type: string): boolean {
    return this.all || this.types.has(type);
  }

  get state(): { all: boolean; types: string[] } {
    return { all: this.all, types: [...this.types].sort() };
  }

  /** Pauses everything (no type) or one type. */
  async pause(type?: string): Promise<void> {
    if (type === undefined) this.all = true;
    else this.types.add(type);
    await this.save();
  }

  /** Resumes everything (no type: every paused type too) or one type. */
  async resume(type?: string): Promise<void> {
    if (type === undefined) {
      this.all = false;
      this.types.clear();
    } else this.types.delete(type);
    await this.save();
  }

  private async save(): Promise<void> {
    this.list = [...this.types];
    await this.meta.set(PAUSED_KEY, this.state);
    this.log.info("queue.paused_changed", { all: this.all, types: [...this.types].join(",") || "none" });
  }
}
