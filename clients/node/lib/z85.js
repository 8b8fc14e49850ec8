'use strict';
/** Z85 (ZeroMQ RFC 32), enough for CURVE keys: 32 bytes <-> 40 characters. */

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const INDEX = new Map([...ALPHABET].map((char, i) => [char, i]));

/**
 * @param {string} text a multiple of 5 characters
 * @returns {Buffer | null} the bytes, or null when it is not Z85
 */
function decode(text) {
  if (text.length % 5 !== 0) return null;
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0, o = 0; i < text.length; i += 5, o += 4) {
    let value = 0;
    for (let j = 0; j < 5; j += 1) {
      const digit = INDEX.get(text[i + j]);
      if (digit === undefined) return null;
      value = value * 85 + digit;
    }
    if (value > 0xffffffff) return null;
    out.writeUInt32BE(value, o);
  }
  return out;
}

/**
 * @param {Buffer} bytes a multiple of 4 bytes
 * @returns {string}
 */
function encode(bytes) {
  let text = '';
  for (let o = 0; o < bytes.length; o += 4) {
    let value = bytes.readUInt32BE(o);
    const chunk = new Array(5);
    for (let j = 4; j >= 0; j -= 1) {
      chunk[j] = ALPHABET[value % 85];
      value = Math.floor(value / 85);
    }
    text += chunk.join('');
  }
  return text;
}

module.exports = { decode, encode };
