// The progress bus: one typed emitter that the engine publishes to and that SSE streams,
// logs and tests subscribe to.

import type { EventMap, EventName } from "../../protocol/events.js";

type Listener<K extends EventName> = (data: EventMap[K]) => void;

export class EventBus {
  private listeners: { [K in EventName]: Set<Listener<K>> } = {
    "job:progress": new Set(),
    "job:status": new Set(),
    "job:log": new Set(),
  };

  on<K extends EventName>(name: K, fn: Listener<K>): () => void {
    (this.listeners[name] as Set<Listener<K>>).add(fn);
    return () => void (this.listeners[name] as Set<Listener<K>>).delete(fn);
  }

  /** True when someone listens: lets the engine skip building events nobody reads. */
  wants(name: EventName): boolean {
    return this.listeners[name].size > 0;
  }

  emit<K extends EventName>(name: K, data: EventMap[K]): void {
    for (const fn of this.listeners[name] as Set<Listener<K>>) {
      try {
        fn(data);
      } catch {
        // A failing subscriber (a closed stream) must not break the engine.
      }
    }
  }
}
