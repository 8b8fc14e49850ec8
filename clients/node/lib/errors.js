'use strict';
/**
 * The one error class of the client. `code` is the wire code of an error reply
 * (BAD_NAME, BAD_COUNT, EXHAUSTED, INTERNAL, ...), UNAVAILABLE when no endpoint
 * answered within the deadline, CLOSED for a call on a closed client, or AUTH when
 * the endpoints refused the client's CURVE handshake (never sent by a server).
 */

const CODES = Object.freeze({
  BAD_REQUEST: 'BAD_REQUEST',
  BAD_NAME: 'BAD_NAME',
  BAD_LAST: 'BAD_LAST',
  BAD_COUNT: 'BAD_COUNT',
  EXHAUSTED: 'EXHAUSTED',
  UNAVAILABLE: 'UNAVAILABLE',
  INTERNAL: 'INTERNAL',
  CLOSED: 'CLOSED',
  AUTH: 'AUTH',
});

/** Error replies that say "this endpoint cannot serve now": another endpoint may. */
const FAILOVER_CODES = new Set([CODES.INTERNAL, CODES.UNAVAILABLE]);

class SeqgenError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'SeqgenError';
    this.code = code;
  }
}

function closedError() {
  return new SeqgenError(CODES.CLOSED, 'this seqgen client is closed');
}

module.exports = { CODES, FAILOVER_CODES, SeqgenError, closedError };
