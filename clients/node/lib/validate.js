'use strict';
/**
 * Names and counts checked before anything is sent, with the codes a server
 * would use (BAD_NAME, BAD_COUNT), so a bad argument never costs a round trip.
 */

const { CODES, SeqgenError } = require('./errors');

const MAX_NAME_BYTES = 200;
const MAX_COUNT = 1000;
const MAX_VALUE = 9223372036854775807n;

// C0 and C1 control characters and DEL, as the server refuses them.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// With the u flag a surrogate pair is one code point, so this finds lone halves only.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * @param {unknown} name
 * @returns {SeqgenError | null} the BAD_NAME error, or null when the name is valid
 */
function nameError(name) {
  if (typeof name !== 'string' || name.length === 0) {
    return new SeqgenError(CODES.BAD_NAME, 'name must be a non-empty string');
  }
  // A lone surrogate counts 3 bytes here, as it would in Python's surrogatepass.
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) {
    return new SeqgenError(CODES.BAD_NAME, `name is longer than ${MAX_NAME_BYTES} UTF-8 bytes`);
  }
  if (CONTROL.test(name)) {
    return new SeqgenError(CODES.BAD_NAME, 'name contains control characters');
  }
  if (LONE_SURROGATE.test(name)) {
    return new SeqgenError(CODES.BAD_NAME, 'name is not valid Unicode');
  }
  return null;
}

/**
 * @param {unknown} count
 * @returns {SeqgenError | null} the BAD_COUNT error, or null when the count is valid
 */
function countError(count) {
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > MAX_COUNT) {
    return new SeqgenError(CODES.BAD_COUNT, `count must be an integer from 1 to ${MAX_COUNT}`);
  }
  return null;
}

module.exports = { MAX_COUNT, MAX_NAME_BYTES, MAX_VALUE, countError, nameError };
