import type pg from "pg";
import type { Board } from "../../protocol/types.js";
import type { BoardStore } from "../types.js";
import { conflict } from "../../lib/errors.js";
import { ts } from "./connect.js";

interface Row {
  id: number;
  name: string;
  created_at: number;
  task_count: number;
}

const toBoard = (r: Row): Board => ({ id: r.id, name: r.name, createdAt: new Date(r.created_at).toISOString(), taskCount: r.task_count });

const SELECT = `SELECT b.id, b.name, b.created_at, (SELECT count(*) FROM tasks t WHERE t.board_id = b.id) AS task_count FROM boards b`;

export function pgBoards(pool: pg.Pool): BoardStore {
  return {
    async list() {
      return (await pool.query<Row>(`${SELECT} ORDER BY b.name COLLATE "C"`)).rows.map(toBoard);
    },
    async get(name) {
      const row = (await pool.query<Row>(`${SELECT} WHERE b.name = $1`, [name])).rows[0];
      return row ? toBoard(row) : null;
    },
    async create(name, now) {
      const r = await pool.query<Row>(
        `INSERT INTO boards (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING id, name, created_at, 0::bigint AS task_count`,
        [name, ts(now)],
      );
      if (r.rows.length === 0) throw conflict(`board "${name}" already exists`);
      return toBoard(r.rows[0]!);
    },
  };
}
