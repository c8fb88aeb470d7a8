// Copies non-TypeScript assets (SQL migrations) next to the compiled code.
import { cpSync, mkdirSync } from "node:fs";
for (const kind of ["sqlite", "postgres"]) {
  mkdirSync(`dist/store/${kind}/migrations`, { recursive: true });
  cpSync(`src/store/${kind}/migrations`, `dist/store/${kind}/migrations`, { recursive: true });
}
