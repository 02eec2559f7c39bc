// The real `argus` binary as a child process: `argus up` on ephemeral ports with a fresh data directory.
//
// The binary is $ARGUS_BIN, else target/debug/argus of this repository. Every listener is on 127.0.0.1:0 and the
// data directory is fresh, so runs never collide with each other or with a developer's `argus up`.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const ARGUS_BIN = process.env.ARGUS_BIN || resolve(HERE, '../../../target/debug/argus');
const STARTUP_TIMEOUT_MS = 30_000;
const PART_LINE = /^\s+(issuer|gate|watch|demo-api)\s+(http:\/\/\S+)/gm;
const DEMO_PARTS = ['issuer', 'gate', 'watch', 'demo-api'];
// `argus up --demo` creates the admin client with a new secret and prints it in its banner, once.
const ADMIN_LINE = /^\s+admin\s+(\S+)\s.*secret:\s+(\S+)\s*$/m;
const BASE_CONFIG = `[issuer]
listen = "127.0.0.1:0"
[gate]
listen = "127.0.0.1:0"
[watch]
listen = "127.0.0.1:0"
[demo]
listen = "127.0.0.1:0"
[metrics]
listen = "127.0.0.1:0"
`;

/** A running `argus up --demo`: its part URLs, its output, and how to stop it. */
export class Argus {
  constructor(child, tmp, password, parts) {
    this.child = child;
    this.tmp = tmp;
    this.dataDir = join(tmp, 'data');
    this.password = password;
    this.parts = parts;
    this.stdout = '';
    this.stderr = '';
    this.urls = {};
    /** The admin client of the banner: `{ clientId, clientSecret }`. */
    this.admin = undefined;
    this.exited = new Promise((done) => child.once('exit', (code, signal) => done({ code, signal })));
    child.stdout.setEncoding('utf8').on('data', (chunk) => (this.stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (this.stderr += chunk));
  }

  /**
   * Start `argus up --demo`. `config` is TOML appended to the base configuration (ephemeral listeners): only tables
   * the base does not have, or keys under a new `[table.sub]`.
   * `baseConfig` replaces the base (it must keep every listener ephemeral).
   */
  static async start({ config = '', baseConfig = BASE_CONFIG } = {}) {
    const tmp = await mkdtemp(join(tmpdir(), 'argus-interop-'));
    const configPath = join(tmp, 'argus.toml');
    await writeFile(configPath, baseConfig + config);
    // Hex, so it never starts with '-' (which the command line would read as a flag).
    const password = randomBytes(16).toString('hex');
    const dataDir = join(tmp, 'data');
    const args = ['up', '--demo', '--data-dir', dataDir, '--demo-password', password, '--config', configPath];
    const child = spawn(ARGUS_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const argus = new Argus(child, tmp, password, DEMO_PARTS);
    const spawned = new Promise((ok, fail) => {
      child.once('spawn', ok);
      child.once('error', (err) => fail(new Error(`cannot start ${ARGUS_BIN}: ${err.message}`)));
    });
    try {
      await spawned;
      await argus.waitForParts();
    } catch (err) {
      await argus.stop();
      throw err;
    }
    return argus;
  }

  /** Resolve once the banner named every part and the admin client; fail if argus exits first or after 30 s. */
  async waitForParts() {
    const deadline = performance.now() + STARTUP_TIMEOUT_MS;
    let exit;
    this.exited.then((e) => (exit = e));
    while (performance.now() < deadline) {
      for (const [, part, url] of this.stdout.matchAll(PART_LINE)) {
        this.urls[part] = url.replace(/\/+$/, '');
      }
      const admin = this.stdout.match(ADMIN_LINE);
      if (admin) this.admin = { clientId: admin[1], clientSecret: admin[2] };
      if (this.parts.every((p) => this.urls[p]) && this.admin) return;
      if (exit) {
        throw new Error(`argus exited (${exit.code ?? exit.signal}) before it was up\n${this.output()}`);
      }
      await sleep(25);
    }
    throw new Error(`argus did not print all of ${this.parts.join(', ')} within ${STARTUP_TIMEOUT_MS} ms\n${this.output()}`);
  }

  output() {
    return `--- argus stdout ---\n${this.stdout}\n--- argus stderr (last 20000 chars) ---\n${this.stderr.slice(-20_000)}`;
  }

  /** SIGTERM, then SIGKILL if it is still running after 5 s; then remove the temp directory. */
  async stop() {
    // No pid: the binary never started, and no 'exit' will come.
    const running = this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null;
    if (running) {
      this.child.kill('SIGTERM');
      // The grace timer is cancelled once argus exits, so it does not hold this process open for 5 s.
      const grace = new AbortController();
      const timeout = sleep(5_000, false, { signal: grace.signal }).catch(() => true);
      const stopped = await Promise.race([this.exited.then(() => true), timeout]);
      grace.abort();
      if (!stopped) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
    await rm(this.tmp, { recursive: true, force: true });
  }
}
