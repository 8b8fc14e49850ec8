'use strict';
/**
 * A nemesis client process in Node.js: the Python worker (tests/nemesis/worker.py) for
 * the seqgen Node.js client, with the same configuration and the same records.
 *
 *     node tests/nemesis/worker.js '<WorkerConfig as JSON>'
 *
 * `kind` is "node-promise" (`await client.next(name)`) or "node-callback"
 * (`client.next(name, (err, value) => ...)`). `concurrency` loops share one client,
 * each starting its calls `concurrency / rate_per_s` seconds apart (a call that
 * overran starts the next at once, no burst). Every finished call is appended to
 * `out` as a JSON line `[t0, t1, value, error]` (flushed every quarter second), with
 * t0 and t1 on CLOCK_MONOTONIC: the clock of Python's time.monotonic, the same in
 * every namespace. Runs until its standard input closes (or `max_duration_s`
 * passes), then lets the calls in flight finish, writes everything and exits 0.
 */

const fs = require('node:fs');
const path = require('node:path');

const seqgen = require(path.join(__dirname, '..', '..', 'clients', 'node'));

const FLUSH_INTERVAL_MS = 250;

/** Seconds on CLOCK_MONOTONIC (libuv's hrtime), as Python's time.monotonic(). */
const monotonic = () => Number(process.hrtime.bigint()) / 1e9;

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

function failure(err) {
  return err instanceof seqgen.SeqgenError ? err.code : (err && err.name) || 'Error';
}

class Recorder {
  constructor(out) {
    this._fd = fs.openSync(out, 'a');
    this._lines = [];
  }

  add(t0, t1, value, error) {
    // The value is a BigInt: written as a JSON integer, digit for digit.
    this._lines.push(value === null
      ? JSON.stringify([t0, t1, null, error])
      : `[${JSON.stringify(t0)},${JSON.stringify(t1)},${value.toString()},null]`);
  }

  flush() {
    if (this._lines.length === 0) return;
    const data = `${this._lines.join('\n')}\n`;
    this._lines = [];
    fs.writeSync(this._fd, data);
  }

  close() {
    this.flush();
    fs.closeSync(this._fd);
  }
}

function callOnce(client, kind, name) {
  if (kind === 'node-promise') return client.next(name);
  return new Promise((resolve, reject) => {
    client.next(name, (err, value) => (err ? reject(err) : resolve(value)));
  });
}

async function main() {
  const config = JSON.parse(process.argv[2]);
  if (config.kind !== 'node-promise' && config.kind !== 'node-callback') {
    throw new Error(`unknown kind ${JSON.stringify(config.kind)}`);
  }
  const recorder = new Recorder(config.out);
  const client = seqgen(config.endpoints);
  let stopped = false;
  /** The loops' pending waits: stopping ends them at once. */
  const sleepers = new Set();
  const stop = () => {
    stopped = true;
    for (const wake of sleepers) wake();
  };
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
  const limit = setTimeout(stop, config.max_duration_s * 1000);
  const flusher = setInterval(() => recorder.flush(), FLUSH_INTERVAL_MS);

  const intervalS = config.concurrency / config.rate_per_s;
  async function loop() {
    let nextAt = monotonic();
    while (!stopped) {
      const now = monotonic();
      nextAt = Math.max(nextAt + intervalS, now);
      await new Promise((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          sleepers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, (nextAt - now) * 1000);
        sleepers.add(wake);
      });
      if (stopped) return;
      const t0 = monotonic();
      try {
        const value = await callOnce(client, config.kind, config.name);
        recorder.add(t0, monotonic(), value, null);
      } catch (err) {
        recorder.add(t0, monotonic(), null, failure(err));
      }
    }
  }

  await Promise.all(Array.from({ length: config.concurrency }, loop));
  clearTimeout(limit);
  clearInterval(flusher);
  client.close();
  recorder.close();
  process.stdin.pause();
  await sleep(0);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
