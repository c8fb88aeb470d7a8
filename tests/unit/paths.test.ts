import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { MAX_SOCKET_PATH, resolvePaths, shortSocketDir } from "../../src/config/paths.js";

const uid = String(process.getuid?.() ?? "user");

/** A home whose socket path (<home>/run/daemon.sock) is exactly `socketLength` bytes. */
function homeWithSocketLength(socketLength: number, base = "/tmp/tw"): string {
  const suffix = "/run/daemon.sock";
  return base + "x".repeat(socketLength - suffix.length - base.length);
}

describe("resolvePaths with a home folder", () => {
  it("puts everything under --home", () => {
    const p = resolvePaths({ home: "/srv/tw", env: {} });
    expect(p).toEqual({
      home: "/srv/tw",
      configFile: "/srv/tw/config.json",
      dataDir: "/srv/tw",
      database: "/srv/tw/teamwork.db",
      uploads: "/srv/tw/uploads",
      uploadsTmp: "/srv/tw/uploads/tmp",
      reports: "/srv/tw/reports",
      outbox: "/srv/tw/outbox",
      thumbs: "/srv/tw/thumbs",
      stateDir: "/srv/tw",
      logFile: "/srv/tw/daemon.log",
      crashLogFile: "/srv/tw/daemon.crash.log",
      runtimeDir: "/srv/tw/run",
      pidFile: "/srv/tw/run/daemon.pid",
      socket: "/srv/tw/run/daemon.sock",
      socketRelocated: false,
      explicit: true,
    });
  });

  it("resolves a relative home against the working directory", () => {
    const p = resolvePaths({ home: "rel/home", env: {} });
    expect(p.home).toBe(resolve("rel/home"));
    expect(p.database).toBe(join(resolve("rel/home"), "teamwork.db"));
  });

  it("takes TEAMWORK_HOME from the environment, and --home over it", () => {
    expect(resolvePaths({ env: { TEAMWORK_HOME: "/env/home" } })).toMatchObject({ home: "/env/home", socket: "/env/home/run/daemon.sock", explicit: true });
    expect(resolvePaths({ home: "/flag/home", env: { TEAMWORK_HOME: "/env/home" } }).home).toBe("/flag/home");
  });

  it("ignores an empty TEAMWORK_HOME", () => {
    const p = resolvePaths({ env: { TEAMWORK_HOME: "", XDG_DATA_HOME: "/xdg/data" } });
    expect(p.explicit).toBe(false);
    expect(p.home).toBe("/xdg/data/teamwork");
  });
});

describe("resolvePaths with XDG folders", () => {
  const env = { XDG_DATA_HOME: "/x/data", XDG_STATE_HOME: "/x/state", XDG_CONFIG_HOME: "/x/config", XDG_RUNTIME_DIR: "/run/user/1000" };

  it("spreads files over the XDG base directories", () => {
    const p = resolvePaths({ env });
    expect(p).toMatchObject({
      home: "/x/data/teamwork",
      dataDir: "/x/data/teamwork",
      database: "/x/data/teamwork/teamwork.db",
      uploads: "/x/data/teamwork/uploads",
      reports: "/x/data/teamwork/reports",
      outbox: "/x/data/teamwork/outbox",
      stateDir: "/x/state/teamwork",
      logFile: "/x/state/teamwork/daemon.log",
      crashLogFile: "/x/state/teamwork/daemon.crash.log",
      configFile: "/x/config/teamwork/config.json",
      runtimeDir: "/run/user/1000/teamwork",
      pidFile: "/run/user/1000/teamwork/daemon.pid",
      socket: "/run/user/1000/teamwork/daemon.sock",
      explicit: false,
      socketRelocated: false,
    });
  });

  it("falls back to ~/.local/share, ~/.local/state, ~/.config and a per-user temp folder", () => {
    const h = homedir();
    const p = resolvePaths({ env: {} });
    expect(p).toMatchObject({
      dataDir: join(h, ".local", "share", "teamwork"),
      stateDir: join(h, ".local", "state", "teamwork"),
      configFile: join(h, ".config", "teamwork", "config.json"),
      explicit: false,
    });
    expect(p.runtimeDir).toMatch(new RegExp(`^${join(tmpdir(), `teamwork-${uid}`).replace(/[/.]/g, "\\$&")}/run-[0-9a-f]{12}$`));
  });

  it("gives two data folders of one user (two HOMEs, no XDG_RUNTIME_DIR) two sockets", () => {
    const a = resolvePaths({ env: { XDG_DATA_HOME: "/srv/a" } });
    const b = resolvePaths({ env: { XDG_DATA_HOME: "/srv/b" } });
    expect(a.socket).not.toBe(b.socket);
    expect(resolvePaths({ env: { XDG_DATA_HOME: "/srv/a" } }).socket).toBe(a.socket);
  });

  it("a home given as an option wins over XDG variables", () => {
    expect(resolvePaths({ home: "/h", env }).database).toBe("/h/teamwork.db");
  });
});

describe("socket path length", () => {
  it("keeps a socket path of exactly MAX_SOCKET_PATH bytes, relocates one byte more", () => {
    const fits = resolvePaths({ home: homeWithSocketLength(MAX_SOCKET_PATH), env: {} });
    expect(fits.socket.length).toBe(MAX_SOCKET_PATH);
    expect(fits.socketRelocated).toBe(false);
    const over = resolvePaths({ home: homeWithSocketLength(MAX_SOCKET_PATH + 1), env: {} });
    expect(over.socketRelocated).toBe(true);
  });

  it("moves a long home's socket under the per-user temp folder, short enough to bind", () => {
    const home = "/tmp/" + "long-folder-name/".repeat(8) + "home";
    expect(home.length).toBeGreaterThan(110);
    const p = resolvePaths({ home, env: {} });
    expect(p.socketRelocated).toBe(true);
    expect(p.socket.startsWith(shortSocketDir() + "/")).toBe(true);
    expect(shortSocketDir()).toBe(join(tmpdir(), `teamwork-${uid}`));
    expect(p.socket).toMatch(/\/[0-9a-f]{16}\.sock$/);
    expect(Buffer.byteLength(p.socket)).toBeLessThanOrEqual(107);
    // Only the socket moves: the pid file stays in the home's private run folder.
    expect(p.pidFile).toBe(join(home, "run", "daemon.pid"));
    expect(p.database).toBe(join(home, "teamwork.db"));
  });

  it("counts bytes, not characters", () => {
    // 90 two-byte characters: 90 characters but 180 bytes.
    const home = "/tmp/" + "é".repeat(90);
    expect(resolvePaths({ home, env: {} }).socketRelocated).toBe(true);
  });

  it("the same home always gives the same socket path, however it is written", () => {
    const home = "/tmp/" + "a".repeat(120);
    const a = resolvePaths({ home, env: {} });
    const b = resolvePaths({ home, env: {} });
    const c = resolvePaths({ home: `${home}/../${"a".repeat(120)}/`, env: {} });
    const d = resolvePaths({ env: { TEAMWORK_HOME: home } });
    expect(b.socket).toBe(a.socket);
    expect(c.socket).toBe(a.socket);
    expect(d.socket).toBe(a.socket);
  });

  it("different long homes get different sockets", () => {
    const a = resolvePaths({ home: "/tmp/" + "a".repeat(120), env: {} });
    const b = resolvePaths({ home: "/tmp/" + "a".repeat(119) + "b", env: {} });
    expect(a.socket).not.toBe(b.socket);
  });

  it("a long XDG_RUNTIME_DIR relocates the socket too", () => {
    const p = resolvePaths({ env: { XDG_RUNTIME_DIR: "/run/" + "r".repeat(120), XDG_DATA_HOME: "/d" } });
    expect(p.socketRelocated).toBe(true);
    expect(p.socket.startsWith(shortSocketDir())).toBe(true);
  });

  it("with a long temp folder, a long home gets a socket path that fits or a clear error", () => {
    // sun_path holds 107 bytes plus the NUL on Linux. With TMPDIR this long the relocated
    // socket cannot fit either; binding it fails later with an unrelated-looking error.
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = "/tmp/" + "t".repeat(95);
    try {
      let socket: string | undefined;
      let error: Error | undefined;
      try {
        socket = resolvePaths({ home: "/tmp/" + "h".repeat(120), env: {} }).socket;
      } catch (err) {
        error = err as Error;
      }
      if (error) expect(error.message).toMatch(/socket/i);
      else expect(Buffer.byteLength(socket!)).toBeLessThanOrEqual(107);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });
});
