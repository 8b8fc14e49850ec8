'use strict';
/**
 * The client's settings, validated once when the client is made. Durations are
 * milliseconds (`...Ms`). Endpoints default to SEQGEN_ENDPOINTS (comma-separated),
 * read when the client is made, else the local cluster's proxy.
 */

const { clientKeys } = require('./keys');

const DEFAULT_ENDPOINT = 'tcp://127.0.0.1:6410';
const ENDPOINTS_ENV = 'SEQGEN_ENDPOINTS';

const DEFAULTS = Object.freeze({
  timeoutMs: 1000,
  deadlineMs: 5000,
  backoffMs: 1000,
  maxBackoffMs: 30000,
  serverPublicKey: null,
  clientSecretKey: null,
  coalesce: true,
  hedge: true,
});

/**
 * Throws for anything that is not a usable ZeroMQ URI (as the Python client does).
 * @param {string} endpoint
 */
function checkEndpoint(endpoint) {
  const sep = endpoint.indexOf('://');
  const scheme = sep < 0 ? '' : endpoint.slice(0, sep);
  const rest = sep < 0 ? '' : endpoint.slice(sep + 3);
  if (!['tcp', 'ipc', 'inproc'].includes(scheme) || rest === '') {
    throw new Error(
      `${JSON.stringify(endpoint)} is not a ZeroMQ endpoint (tcp://HOST:PORT, ipc://PATH or inproc://NAME)`,
    );
  }
  if (scheme === 'tcp') {
    const colon = rest.lastIndexOf(':');
    const host = colon < 0 ? '' : rest.slice(0, colon);
    const port = rest.slice(colon + 1);
    if (colon < 0 || host === '') {
      throw new Error(`${JSON.stringify(endpoint)} needs a host and a port (tcp://HOST:PORT)`);
    }
    if (port !== '*' && !(/^[0-9]+$/.test(port) && Number(port) > 0 && Number(port) < 65536)) {
      throw new Error(`${JSON.stringify(endpoint)} has an invalid port ${JSON.stringify(port)}`);
    }
  }
}

/**
 * @param {unknown} given
 * @param {NodeJS.ProcessEnv} env
 * @returns {string[]}
 */
function endpointsFrom(given, env) {
  let uris;
  if (given === undefined || given === null) {
    const listed = String(env[ENDPOINTS_ENV] || '').split(',').map((uri) => uri.trim()).filter(Boolean);
    uris = listed.length > 0 ? listed : [DEFAULT_ENDPOINT];
  } else if (typeof given === 'string') {
    uris = [given];
  } else if (Array.isArray(given)) {
    uris = [...given];
  } else {
    throw new TypeError('endpoints must be a string or an array of strings');
  }
  if (uris.length === 0) throw new Error('at least one endpoint is needed');
  for (const uri of uris) {
    if (typeof uri !== 'string') throw new TypeError(`an endpoint must be a string, got ${typeof uri}`);
    checkEndpoint(uri);
  }
  if (new Set(uris).size !== uris.length) throw new Error('an endpoint is listed twice');
  return uris;
}

/** The longest delay Node.js timers take (about 24.8 days); a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function positiveMs(name, value) {
  if (typeof value !== 'number') {
    throw new TypeError(`${name} must be a number of milliseconds, got ${typeof value}`);
  }
  if (!(value > 0 && value <= MAX_TIMER_MS)) {
    throw new RangeError(`${name} must be a number of milliseconds from 0 (excluded) to ${MAX_TIMER_MS}, got ${value}`);
  }
  return value;
}

/**
 * @param {unknown} endpoints
 * @param {unknown} options
 * @param {NodeJS.ProcessEnv} env
 * @param {() => { publicKey: string, secretKey: string }} makePair CURVE key pair maker
 */
function buildOptions(endpoints, options, env, makePair) {
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError('options must be an object');
  }
  for (const key of Object.keys(options)) {
    if (!Object.prototype.hasOwnProperty.call(DEFAULTS, key)) {
      throw new TypeError(
        `unknown option ${JSON.stringify(key)} (known: ${Object.keys(DEFAULTS).join(', ')})`,
      );
    }
  }
  const merged = { ...DEFAULTS };
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) merged[key] = value;
  }
  const timeoutMs = positiveMs('timeoutMs', merged.timeoutMs);
  const deadlineMs = positiveMs('deadlineMs', merged.deadlineMs);
  const backoffMs = positiveMs('backoffMs', merged.backoffMs);
  const maxBackoffMs = positiveMs('maxBackoffMs', merged.maxBackoffMs);
  if (maxBackoffMs < backoffMs) throw new RangeError('maxBackoffMs must not be less than backoffMs');
  if (typeof merged.coalesce !== 'boolean') throw new TypeError('coalesce must be true or false');
  if (typeof merged.hedge !== 'boolean') throw new TypeError('hedge must be true or false');
  return {
    endpoints: endpointsFrom(endpoints, env),
    timeoutMs,
    deadlineMs,
    backoffMs,
    maxBackoffMs,
    coalesce: merged.coalesce,
    hedge: merged.hedge,
    curve: clientKeys(merged.serverPublicKey, merged.clientSecretKey, makePair),
  };
}

module.exports = { DEFAULTS, DEFAULT_ENDPOINT, ENDPOINTS_ENV, buildOptions, positiveMs };
