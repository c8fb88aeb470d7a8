// import() for modules a command loads only when it needs them (node:http, ora, ...).
//
// The CLI bundle runs as a vm.Script compiled from V8's code cache (bin/teamwork.cjs), and in
// Node 20 such a script has no import() of its own: the entry file hands one over as
// globalThis.__teamworkImport. Anywhere else (the daemon, tests, the unbundled build) this is a
// plain import().

type Importer = (specifier: string) => Promise<unknown>;

export function lazyImport<T>(specifier: string): Promise<T> {
  const importer = (globalThis as { __teamworkImport?: Importer }).__teamworkImport;
  return (importer ? importer(specifier) : import(specifier)) as Promise<T>;
}
