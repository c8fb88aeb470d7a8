// Copies non-TypeScript assets (SQL migrations) next to the compiled code.
import { cpSync, mkdirSync } from "node:fs";
mkdirSync("dist/store/sqlite/migrations", { recursive: true });
cpSync("src/store/sqlite/migrations", "dist/store/sqlite/migrations", { recursive: true });
