'use strict';
/**
 * Real seqgen-server and seqgen-proxy processes for the tests, started from the
 * project's Python environment on free loopback ports, with their data in a
 * temporary directory. A process is ready when it answers a real request
 * (a control ping, a public request the proxy answers itself), never after a
 * sleep. Everything started is killed at the end (and if the test process exits).
 *
 * The Python interpreter is $SEQGEN_PYTHON (set by the pytest wrapper), else
 * the checkout's .venv/bin/python.
 */

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const zmq = require('zeromq');
const seqgen = require('../..');

const READY_TIMEOUT_MS = 20000;
const REPO = path.resolve(__dirname, '..', '..', '..', '..');

/** The Python interpreter that has seqgen installed. */
function python() {
  return process.env.SEQGEN_PYTHON || path.join(REPO, '.venv', 'bin', 'python');
}

/** Why the integration tests cannot run here, or null when they can. */
function skipReason() {
  const exe = python();
  if (!fs.existsSync(exe)) {
    return `no Python environment with seqgen at ${exe}: run scripts/test, or set SEQGEN_PYTHON`;
  }
  const probe = spawnSync(exe, ['-c', 'import seqgen_server, seqgen_proxy, seqgen_client'], {
    encoding: 'utf8',
  });
  if (probe.status !== 0) return `${exe} cannot import seqgen: ${probe.stderr.trim()}`;
  return null;
}

/** A TCP port on 127.0.0.1 that nobody listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function tcp() {
  return `tcp://127.0.0.1:${await freePort()}`;
}

/**
 * One REQ round trip on a fresh socket.
 * @param {string} endpoint
 * @param {string | Buffer} body
 * @param {number} [timeoutMs]
 * @param {object | null} [curve] zeromq CURVE socket options (curveServerKey, ...)
 * @returns {Promise<Buffer | null>} the reply frame, or null when none came in time
 */
async function request(endpoint, body, timeoutMs = 5000, curve = null) {
  const sock = new zmq.Request({
    linger: 0, receiveTimeout: timeoutMs, sendTimeout: timeoutMs, ...(curve || {}),
  });
  try {
    sock.connect(endpoint);
    await sock.send(body);
    const [reply] = await sock.receive();
    return reply;
  } catch (err) {
    if (err && err.code === 'EAGAIN') return null;
    throw err;
  } finally {
    sock.close();
  }
}

/** A control request (an object, or JSON text for exact big integers); the decoded reply. */
async function control(endpoint, message) {
  const body = typeof message === 'string' ? message : JSON.stringify(message);
  const reply = await request(endpoint, body);
  if (reply === null) throw new Error(`no reply from the control socket ${endpoint}`);
  return JSON.parse(reply.toString());
}

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      process.kill(child.pid, 'SIGCONT');
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

class Proc {
  constructor(args, logPath, extra = {}) {
    this.args = args;
    this.logPath = logPath;
    Object.assign(this, extra);
    const log = fs.openSync(logPath, 'a');
    this.child = spawn(python(), args, { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        live.delete(this.child);
        resolve(code === null ? signal : code);
      });
    });
    live.add(this.child);
  }

  get pid() {
    return this.child.pid;
  }

  alive() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(sig) {
    if (this.alive()) process.kill(this.child.pid, sig);
  }

  /** SIGKILL, and wait until it is gone. */
  async kill() {
    this.signal('SIGCONT');
    this.signal('SIGKILL');
    await this.exited;
  }

  freeze() {
    this.signal('SIGSTOP');
  }

  thaw() {
    this.signal('SIGCONT');
  }

  log() {
    try {
      return fs.readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }
}

/** Poll `check()` (a real request with its own timeout) until it is true. */
async function waitUntil(check, what, proc) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (proc !== undefined && !proc.alive()) {
      throw new Error(`${what} exited:\n${proc.log()}`);
    }
    if (await check()) return;
    await new Promise((resolve) => { setTimeout(resolve, 20); }); // between real probes only
  }
  throw new Error(`${what} not ready after ${READY_TIMEOUT_MS} ms` + (proc ? `:\n${proc.log()}` : ''));
}

class Cluster {
  constructor() {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'sgnode-'));
    this.procs = [];
    this._clients = [];
    this._n = 0;
  }

  /** Close `made` (a seqgen client) when the cluster closes; returns it. */
  adopt(made) {
    this._clients.push(made);
    return made;
  }

  /** A seqgen client, closed when the cluster closes. */
  client(endpoints, options) {
    return this.adopt(seqgen(endpoints, options));
  }

  _log(kind) {
    this._n += 1;
    return path.join(this.root, `${String(this._n).padStart(2, '0')}-${kind}.log`);
  }

  /**
   * A seqgen-server, ready.
   * @param {{ instance?: number, instances?: number, extra?: string[] }} [opts]
   */
  async server({ instance = 1, instances = 1, extra = [] } = {}) {
    const bind = await tcp();
    const controlUri = await tcp();
    this._n += 1;
    const data = path.join(this.root, `data-${instance}-of-${instances}-${this._n}`);
    const args = [
      '-m', 'seqgen_server', '--bind', bind, '--control', controlUri,
      '--instance', String(instance), '--instances', String(instances), '--data', data, ...extra,
    ];
    const proc = new Proc(args, this._log('server'), { bind, control: controlUri, data });
    this.procs.push(proc);
    await waitUntil(
      async () => (await request(controlUri, '{"type":"ping"}', 500)) !== null,
      'seqgen-server', proc,
    );
    return proc;
  }

  /**
   * A seqgen-proxy in front of `hosts`, ready.
   * @param {string[]} hosts
   * @param {string[]} [extra]
   * @param {object | null} [curve] CURVE socket options for the readiness probe
   */
  async proxy(hosts, extra = [], curve = null) {
    const bind = await tcp();
    const args = ['-m', 'seqgen_proxy', '--bind', bind];
    for (const host of hosts) args.push('--host', host);
    const proc = new Proc([...args, ...extra], this._log('proxy'), { bind });
    this.procs.push(proc);
    // A request the proxy answers itself proves it serves, without using a number.
    await waitUntil(
      async () => (await request(bind, '[]', 500, curve)) !== null, 'seqgen-proxy', proc,
    );
    return proc;
  }

  /** `seqgen keygen DIR --name NAME`: [NAME.key, NAME.key_secret]. */
  keygen(dir, name) {
    const done = spawnSync(python(), ['-m', 'seqgen_client', 'keygen', dir, '--name', name], {
      encoding: 'utf8',
    });
    if (done.status !== 0) throw new Error(`seqgen keygen failed: ${done.stderr}`);
    return done.stdout.trim().split('\n');
  }

  /** Close the clients, kill everything that is left and remove the temporary directory. */
  async close() {
    for (const made of this._clients) made.close();
    await Promise.all(this.procs.map((proc) => proc.kill()));
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** The server's counters of public requests by outcome ("OK" or an error code). */
async function requestCounters(server) {
  const status = await control(server.control, { type: 'get_status' });
  if (status.type !== 'status') throw new Error(`unexpected status reply ${JSON.stringify(status)}`);
  return status.counters.requests;
}

function total(counters) {
  return Object.values(counters).reduce((sum, n) => sum + n, 0);
}

module.exports = {
  Cluster, control, freePort, python, request, requestCounters, skipReason, tcp, total,
};
