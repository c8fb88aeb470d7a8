// The open-files limit's pure parts (src/daemon/descriptors.ts): reading /proc/<pid>/limits,
// whether to raise, and the line `daemon status` shows.

import { describe, expect, it } from "vitest";
import { describeOpenFiles, parseOpenFileLimits, raiseTarget } from "../../src/daemon/descriptors.js";

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

describe("parseOpenFileLimits", () => {
  it("reads the open-files line", () => {
    expect(parseOpenFileLimits(LIMITS)).toEqual({ soft: 1024, hard: 524288 });
  });
  it("reads unlimited as null", () => {
    expect(parseOpenFileLimits("Max open files            unlimited            unlimited            files\n")).toEqual({ soft: null, hard: null });
  });
  it("gives null for text without the line, or with a value it cannot read", () => {
    expect(parseOpenFileLimits("Max cpu time unlimited unlimited seconds\n")).toBeNull();
    expect(parseOpenFileLimits("Max open files  lots  4096  files\n")).toBeNull();
  });
});

describe("raiseTarget", () => {
  it("raises a soft limit below the hard one to the hard one", () => {
    expect(raiseTarget({ soft: 1024, hard: 524288 })).toBe(524288);
  });
  it("leaves soft = hard, and an unlimited hard limit, alone", () => {
    expect(raiseTarget({ soft: 4096, hard: 4096 })).toBeNull();
    expect(raiseTarget({ soft: 1024, hard: null })).toBeNull();
    expect(raiseTarget({ soft: null, hard: null })).toBeNull();
  });
});

describe("describeOpenFiles", () => {
  it("says soft = hard, where it was raised from, or why it was not", () => {
    expect(describeOpenFiles({ before: { soft: 4096, hard: 4096 }, after: { soft: 4096, hard: 4096 }, raised: false })).toBe("4096 (soft = hard)");
    expect(describeOpenFiles({ before: { soft: 256, hard: 4096 }, after: { soft: 4096, hard: 4096 }, raised: true })).toBe("4096 (soft = hard), raised from 256 at start");
    expect(
      describeOpenFiles({ before: { soft: 256, hard: 4096 }, after: { soft: 256, hard: 4096 }, raised: false, note: "soft limit 256 of hard 4096 open files: prlimit (util-linux) is not on PATH" }),
    ).toBe("256 of hard 4096; not raised: prlimit (util-linux) is not on PATH");
  });
});
