'use strict';
/**
 * seqgen: short, unique, roughly increasing 64-bit numbers from seqgen servers or proxies.
 *
 *   const seqgen = require('seqgen')(['tcp://10.0.0.11:6410', 'tcp://10.0.0.12:6410']);
 *   seqgen.next('invoice', (err, value) => { ... });   // value: a BigInt
 *   const value = await seqgen.next('invoice');
 *   const values = await seqgen.nextMany('invoice', 50);
 *   seqgen.close();
 */

const { Client } = require('./lib/client');
const { CODES, SeqgenError } = require('./lib/errors');
const { DEFAULT_ENDPOINT, ENDPOINTS_ENV } = require('./lib/options');
const { MAX_COUNT, MAX_NAME_BYTES, MAX_VALUE } = require('./lib/validate');

/**
 * A client for `endpoints` (a ZeroMQ URI or an array of them; default: the
 * comma-separated SEQGEN_ENDPOINTS, else tcp://127.0.0.1:6410). With a plain
 * object as the only argument, that object is the options.
 */
function seqgen(endpoints, options) {
  if (options === undefined && endpoints !== null && typeof endpoints === 'object'
      && !Array.isArray(endpoints)) {
    return new Client(undefined, endpoints);
  }
  return new Client(endpoints, options);
}

seqgen.Client = Client;
seqgen.SeqgenError = SeqgenError;
seqgen.codes = CODES;
seqgen.DEFAULT_ENDPOINT = DEFAULT_ENDPOINT;
seqgen.ENDPOINTS_ENV = ENDPOINTS_ENV;
seqgen.MAX_VALUE = MAX_VALUE;
seqgen.MAX_COUNT = MAX_COUNT;
seqgen.MAX_NAME_BYTES = MAX_NAME_BYTES;
seqgen.default = seqgen;

module.exports = seqgen;
