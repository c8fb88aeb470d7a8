// A second process that holds the SQLite database's write lock: it begins an exclusive
// transaction, prints "locked", and keeps it until its stdin closes (then rolls back and
// exits 0) or it is killed (the OS drops the lock).
//
//   node tests/store/lock-holder.mjs <database file>

import Database from "better-sqlite3";

const db = new Database(process.argv[2], { fileMustExist: true });
db.pragma("busy_timeout = 5000");
db.exec("BEGIN EXCLUSIVE");
process.stdout.write("locked\n");
process.stdin.on("end", () => {
  db.exec("ROLLBACK");
  db.close();
  process.exit(0);
});
process.stdin.resume();
