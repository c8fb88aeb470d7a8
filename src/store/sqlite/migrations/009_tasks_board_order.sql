-- A board's tasks in id order, for reads that page through a board (the report's snapshot:
-- WHERE board_id = ? AND id > ? ORDER BY id LIMIT ?). Without it each page sorted the whole board.
CREATE INDEX tasks_board_id ON tasks (board_id, id);
