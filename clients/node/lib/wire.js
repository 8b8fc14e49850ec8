'use strict';
/**
 * The public protocol: one frame of UTF-8 JSON each way.
 * Request `["name", "last"]` or `["name", "last", count]`; reply
 * `[null, "v1", ..., "vN"]` (ascending) or `["CODE", "message"]`.
 */

const { CODES, SeqgenError } = require('./errors');

const DIGITS = /^[0-9]+$/;

/**
 * The request frame (count is left out when it is 1, as the original protocol does).
 * @param {string} name a validated name
 * @param {bigint} last
 * @param {number} count
 * @returns {Buffer}
 */
function encodeRequest(name, last, count) {
  const items = count === 1 ? [name, last.toString()] : [name, last.toString(), count];
  return Buffer.from(JSON.stringify(items), 'utf8');
}

/** What a client says when the reply is the control protocol's (a JSON object with a type). */
const CONTROL_SOCKET_MISTAKE = "this endpoint is a seqgen-server's control socket (the one its "
  + 'seqgen-admin uses, --control, port 6412 by default), not a public socket: point the client '
  + "at the server's --bind address (port 6410 by default) or at a proxy";

/**
 * The `count` numbers of a success reply, or throws the SeqgenError the reply carries.
 * A reply that is not what was asked for is INTERNAL (another endpoint may do better).
 * @param {Buffer} frame
 * @param {number} count
 * @returns {bigint[]}
 */
function parseReply(frame, count) {
  let items;
  try {
    items = JSON.parse(frame.toString('utf8'));
  } catch {
    throw new SeqgenError(CODES.INTERNAL, 'malformed reply from server');
  }
  if (items !== null && typeof items === 'object' && !Array.isArray(items)
      && typeof items.type === 'string') {
    throw new SeqgenError(CODES.INTERNAL, CONTROL_SOCKET_MISTAKE);
  }
  if (!Array.isArray(items) || items.length === 0) {
    throw new SeqgenError(CODES.INTERNAL, 'malformed reply from server');
  }
  const head = items[0];
  if (head !== null) {
    if (typeof head !== 'string' || head === '') {
      throw new SeqgenError(CODES.INTERNAL, 'malformed reply from server');
    }
    const message = typeof items[1] === 'string' ? items[1] : '';
    throw new SeqgenError(head, message);
  }
  if (items.length !== count + 1) {
    throw new SeqgenError(
      CODES.INTERNAL,
      `the server sent ${items.length - 1} number(s) for a request of ${count}`,
    );
  }
  const values = new Array(count);
  for (let i = 0; i < count; i += 1) {
    const text = items[i + 1];
    if (typeof text !== 'string' || !DIGITS.test(text)) {
      throw new SeqgenError(CODES.INTERNAL, 'malformed values in reply');
    }
    values[i] = BigInt(text);
  }
  return values;
}

module.exports = { encodeRequest, parseReply };
