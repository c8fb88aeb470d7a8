import type { Board } from "../../protocol/types.js";
import type { BoardStore } from "../types.js";
import { conflict } from "../../lib/errors.js";
import type { Db } from "./open.js";
import { iso } from "./convert.js";

interface Row {
  id: number;
  name: string;
  created_at: number;
  task_count: number;
}

const toBoard = (r: Row): Board => ({ id: r.id, name: r.name, createdAt: iso(r.created_at), taskCount: r.task_count });

export function sqliteBoards(db: Db): BoardStore {
  const select = `SELECT b.id, b.name, b.created_at, (SELECT count(*) FROM tasks t WHERE t.board_id = b.id) AS task_count FROM boards b`;
  const list = db.prepare<[], Row>(`${select} ORDER BY b.name`);
  const get = db.prepare<[string], Row>(`${select} WHERE b.name = ?`);
  const insert = db.prepare<[string, number]>(`INSERT INTO boards (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`);
  return {
    async list() {
      return list.all().map(toBoard);
    },
    async get(name) {
      const row = get.get(name);
      return row ? toBoard(row) : null;
    },
    async create(name, now) {
      if (insert.run(name, now).changes === 0) throw conflict(`board "${name}" already exists`);
      return toBoard(get.get(name)!);
    },
  };
}
