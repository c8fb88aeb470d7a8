// A strict reader of the Prometheus text exposition format 0.0.4, for tests: it throws on
// anything a scraper could misread, and returns every sample by its series key.

export interface Exposition {
  /** `name{label="value",…}` (labels sorted, values unescaped) → value. */
  samples: Map<string, number>;
  types: Map<string, string>;
  help: Map<string, string>;
}

/** The series key used by `samples`. */
export function key(name: string, labels: Record<string, string> = {}): string {
  const l = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(",");
  return l ? `${name}{${l}}` : name;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(text.slice(i));
    if (!m) throw new Error(`bad label at ${JSON.stringify(text.slice(i))} in ${JSON.stringify(line)}`);
    i += m[0].length;
    let value = "";
    for (;;) {
      const c = text[i];
      if (c === undefined) throw new Error(`unterminated label value in ${JSON.stringify(line)}`);
      if (c === '"') break;
      if (c === "\\") {
        const e = text[i + 1];
        if (e === "\\") value += "\\";
        else if (e === '"') value += '"';
        else if (e === "n") value += "\n";
        else throw new Error(`bad escape \\${e} in ${JSON.stringify(line)}`);
        i += 2;
      } else {
        value += c;
        i++;
      }
    }
    i++;
    if (m[1]! in labels) throw new Error(`label ${m[1]} twice in ${JSON.stringify(line)}`);
    labels[m[1]!] = value;
    if (text[i] === ",") i++;
    else if (i !== text.length) throw new Error(`expected , after a label in ${JSON.stringify(line)}`);
  }
  return labels;
}

function parseValue(text: string, line: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad value ${JSON.stringify(text)} in ${JSON.stringify(line)}`);
  return Number(text);
}

/** The family a sample belongs to, given the declared types. */
function familyOf(name: string, types: Map<string, string>): string {
  if (types.has(name)) return name;
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    const base = name.slice(0, -suffix.length);
    if (name.endsWith(suffix) && types.get(base) === "histogram") return base;
  }
  throw new Error(`sample ${name} has no # TYPE line before it`);
}

export function parseExposition(text: string): Exposition {
  if (!text.endsWith("\n")) throw new Error("the exposition must end with a line feed");
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const histograms = new Map<string, { les: number[]; buckets: number[]; sum?: number; count?: number }>();
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# HELP ")) {
      const [, name, doc] = /^# HELP (\S+) (.*)$/.exec(line) ?? [];
      if (!name || !NAME.test(name)) throw new Error(`bad HELP line ${JSON.stringify(line)}`);
      if (help.has(name)) throw new Error(`second HELP for ${name}`);
      if (/\\[^\\n]/.test(doc!.replace(/\\\\/g, ""))) throw new Error(`bad escape in HELP ${JSON.stringify(line)}`);
      help.set(name, doc!);
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const [, name, type] = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line) ?? [];
      if (!name || !NAME.test(name)) throw new Error(`bad TYPE line ${JSON.stringify(line)}`);
      if (types.has(name)) throw new Error(`second TYPE for ${name}`);
      if (!help.has(name)) throw new Error(`TYPE before HELP for ${name}`);
      if (type === "counter" && !name.endsWith("_total")) throw new Error(`counter ${name} does not end in _total`);
      types.set(name, type!);
      continue;
    }
    if (line.startsWith("#") || line === "") throw new Error(`unexpected line ${JSON.stringify(line)}`);
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`bad sample line ${JSON.stringify(line)}`);
    const [, name, labelText, valueText] = m;
    const labels = parseLabels(labelText ?? "", line);
    const value = parseValue(valueText!, line);
    const family = familyOf(name!, types);
    const k = key(name!, labels);
    if (samples.has(k)) throw new Error(`series ${k} twice`);
    samples.set(k, value);
    if (types.get(family) === "counter" && !(value >= 0)) throw new Error(`counter ${k} is ${value}`);
    if (types.get(family) === "histogram") {
      const { le, ...rest } = labels;
      const hk = key(family, rest);
      const h = histograms.get(hk) ?? { les: [], buckets: [] };
      histograms.set(hk, h);
      if (name === `${family}_bucket`) {
        if (le === undefined) throw new Error(`bucket without le: ${line}`);
        h.les.push(parseValue(le, line));
        h.buckets.push(value);
      } else if (le !== undefined) throw new Error(`le on ${name}: ${line}`);
      else if (name === `${family}_sum`) h.sum = value;
      else if (name === `${family}_count`) h.count = value;
    }
  }
  for (const [hk, h] of histograms) {
    if (h.les.at(-1) !== Infinity) throw new Error(`${hk}: the last bucket is not le="+Inf"`);
    for (let i = 1; i < h.les.length; i++) {
      if (!(h.les[i]! > h.les[i - 1]!)) throw new Error(`${hk}: le not ascending`);
      if (h.buckets[i]! < h.buckets[i - 1]!) throw new Error(`${hk}: buckets not cumulative`);
    }
    if (h.sum === undefined || h.count === undefined) throw new Error(`${hk}: no _sum or _count`);
    if (h.count !== h.buckets.at(-1)) throw new Error(`${hk}: _count ${h.count} is not the +Inf bucket ${h.buckets.at(-1)}`);
  }
  return { samples, types, help };
}
