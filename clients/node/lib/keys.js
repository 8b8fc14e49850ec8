'use strict';
/**
 * CURVE keys for the client's connections, from what a user gives: z85 key text,
 * or the certificate files that `seqgen keygen` (and pyzmq's zmq.auth) write.
 *
 * `NAME.key` holds `public-key = "..."`; `NAME.key_secret` holds that line and
 * `secret-key = "..."`. A string is a file when a file of that name exists or
 * when it is not 40 characters long; otherwise it is z85 text (as in the
 * Python client). Everything here throws TypeError or Error with a message
 * for a person, when the client is made.
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const z85 = require('./z85');

const KEY_CHARS = 40;
// PKCS#8 wrapping of a raw X25519 private key (RFC 8410), to derive its public key.
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * @param {string} text
 * @param {string} what
 * @returns {string} the key, checked to be 40 characters of valid z85
 */
function z85Key(text, what) {
  if (typeof text === 'string' && text.length === KEY_CHARS) {
    const raw = z85.decode(text);
    if (raw !== null && z85.encode(raw) === text) return text;
  }
  throw new Error(`${what} is not a CURVE key (${KEY_CHARS} z85 characters)`);
}

/**
 * The public key (z85) of a z85 secret key.
 * @param {string} secret
 * @returns {string}
 */
function publicOf(secret) {
  const raw = z85.decode(secret);
  const privateKey = crypto.createPrivateKey({
    key: Buffer.concat([X25519_PKCS8_PREFIX, raw]),
    format: 'der',
    type: 'pkcs8',
  });
  const jwk = crypto.createPublicKey(privateKey).export({ format: 'jwk' });
  return z85.encode(Buffer.from(jwk.x, 'base64url'));
}

/**
 * @param {unknown} source
 * @returns {string | null} the file name, or null when `source` is key text
 */
function asFile(source) {
  if (Buffer.isBuffer(source)) return null;
  if (typeof source !== 'string') {
    throw new TypeError(`a CURVE key must be a file name or z85 text, got ${typeof source}`);
  }
  let isFile = false;
  try {
    isFile = fs.statSync(source).isFile();
  } catch {
    isFile = false;
  }
  return isFile || source.length !== KEY_CHARS ? source : null;
}

/**
 * The public and (when present) secret key of a certificate file, both checked.
 * @param {string} file
 * @param {string} what
 * @returns {{ publicKey: string, secretKey: string | null }}
 */
function readCertificate(file, what) {
  let text;
  try {
    if (!fs.statSync(file).isFile()) throw new Error('not a file');
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const reason = err && err.code === 'ENOENT' ? 'no such certificate file' : `cannot read it (${err.message})`;
    throw new Error(`${what} ${file}: ${reason}`);
  }
  let publicKey = null;
  let secretKey = null;
  for (const line of text.split(/\r?\n/)) {
    const match = /^\s*(public|secret)-key\s*=\s*(.*?)\s*$/.exec(line);
    if (match === null) continue;
    const value = match[2].replace(/^["']|["']$/g, '');
    if (match[1] === 'public') publicKey = value;
    else secretKey = value;
  }
  if (publicKey === null) {
    throw new Error(`${what} ${file}: not a CURVE certificate (no public-key line)`);
  }
  return {
    publicKey: z85Key(publicKey, `${what} ${file}: the public key`),
    secretKey: secretKey === null ? null : z85Key(secretKey, `${what} ${file}: the secret key`),
  };
}

/**
 * The client side of CURVE, or null when no server key is given.
 * Without a client key an ephemeral pair is made (only servers that accept
 * any client key take it).
 * @param {unknown} serverPublicKey a NAME.key file or z85 public key
 * @param {unknown} clientSecretKey a NAME.key_secret file or z85 secret key
 * @param {() => { publicKey: string, secretKey: string }} makePair
 * @returns {{ serverKey: string, publicKey: string, secretKey: string, ephemeral: boolean } | null}
 */
function clientKeys(serverPublicKey, clientSecretKey, makePair) {
  if (serverPublicKey === undefined || serverPublicKey === null) {
    if (clientSecretKey !== undefined && clientSecretKey !== null) {
      throw new Error("clientSecretKey needs the server's public key (serverPublicKey) as well");
    }
    return null;
  }
  const serverFile = asFile(serverPublicKey);
  const serverKey = serverFile !== null
    ? readCertificate(serverFile, 'server public key file').publicKey
    : z85Key(String(serverPublicKey), 'serverPublicKey');
  if (clientSecretKey === undefined || clientSecretKey === null) {
    const pair = makePair();
    return { serverKey, publicKey: pair.publicKey, secretKey: pair.secretKey, ephemeral: true };
  }
  const clientFile = asFile(clientSecretKey);
  if (clientFile === null) {
    const secretKey = z85Key(String(clientSecretKey), 'clientSecretKey');
    return { serverKey, publicKey: publicOf(secretKey), secretKey, ephemeral: false };
  }
  const what = 'client secret key file';
  const cert = readCertificate(clientFile, what);
  if (cert.secretKey === null) {
    throw new Error(
      `${what} ${clientFile}: holds no secret key (give the NAME.key_secret file, not NAME.key)`,
    );
  }
  if (publicOf(cert.secretKey) !== cert.publicKey) {
    throw new Error(`${what} ${clientFile}: its public key does not match its secret key`);
  }
  return { serverKey, publicKey: cert.publicKey, secretKey: cert.secretKey, ephemeral: false };
}

module.exports = { KEY_CHARS, clientKeys, publicOf, z85Key };
