'use strict';
/**
 * One endpoint's DEALER socket, shared by every request of the client.
 *
 * A request goes out as [request id, '', body]. Servers and proxies echo every
 * frame up to and including the empty delimiter, so the reply comes back as
 * [request id, '', reply] and is handed to the attempt that waits for that id.
 * An attempt that timed out forgets its id, so a reply that comes late is
 * dropped, never handed to another request, and closes the socket: what it
 * still holds (requests queued during a partition) dies with it, the other
 * attempts on it fail over at once, and the next attempt connects afresh
 * instead of waiting for TCP's backed-off retransmissions (the asyncio
 * Python client does the same).
 *
 * An attempt that got no answer asks the socket's monitor whether the server refused
 * the security handshake (lib/handshake.js): then it ends `{ refused }`.
 *
 * Socket options follow the Python client's (docs/client.md, "Sockets"):
 * a connect gives up after 1 s and is tried again every 0.1 s at first, at
 * most every 1 s; heartbeats every 1 s drop a connection silent for 3 s.
 *
 * The socket reads only while attempts wait (each read gives up after
 * RECEIVE_POLL_MS and looks again), so an idle client does not keep the
 * Node.js process alive.
 */

const { queuedRefusal } = require('./handshake');
const { NO_ANSWER, UNSENT } = require('./rotation');

/** An attempt on a client that was closed meanwhile. */
const CLOSED = 'closed';

const MAX_FRAME_BYTES = 65536;
const RECEIVE_POLL_MS = 250;
const ID_BYTES = 6;
const MAX_ID = 2 ** 48;
const EMPTY = Buffer.alloc(0);

/** The socket options both clients share (docs/client.md, "Sockets"). */
const SOCKET_OPTIONS = Object.freeze({
  linger: 0, // a closed socket drops what it still holds
  sendTimeout: 0, // a full queue fails at once instead of blocking the request
  receiveTimeout: RECEIVE_POLL_MS,
  maxMessageSize: MAX_FRAME_BYTES, // a reply is far below 64 KiB
  ipv6: true,
  connectTimeout: 1000, // a connect a partition swallowed is tried again within 1 s
  reconnectInterval: 100,
  reconnectMaxInterval: 1000,
  heartbeatInterval: 1000, // a frozen or vanished server is dropped after 3 s of silence
  heartbeatTimeout: 3000,
  sendHighWaterMark: 10000,
  receiveHighWaterMark: 10000,
});

class Endpoint {
  /**
   * @param {typeof import('zeromq')} zmq
   * @param {string} uri
   * @param {{ serverKey: string, publicKey: string, secretKey: string } | null} curve
   */
  constructor(zmq, uri, curve) {
    this.uri = uri;
    this._zmq = zmq;
    this._curve = curve;
    /** @type {{ sock: import('zeromq').Dealer, reading: boolean } | null} */
    this._conn = null;
    /** @type {Map<number, (result: Buffer | string) => void>} */
    this._pending = new Map();
    this._nextId = 1;
    this._closed = false;
  }

  /** The socket, made and connected on first use (or after the old one broke). */
  _connection() {
    if (this._conn !== null && !this._conn.sock.closed) return this._conn;
    const options = { ...SOCKET_OPTIONS };
    if (this._curve !== null) {
      options.curveServerKey = this._curve.serverKey;
      options.curvePublicKey = this._curve.publicKey;
      options.curveSecretKey = this._curve.secretKey;
    }
    const sock = new this._zmq.Dealer(options);
    // Its handshakes are watched from before the connect (lib/handshake.js): a refused one,
    // with or without CURVE here, is told as such.
    const { events } = sock;
    try {
      sock.connect(this.uri);
    } catch (err) {
      sock.close();
      throw err;
    }
    this._conn = { sock, reading: false, events, refusal: null, checking: null };
    return this._conn;
  }

  /**
   * Send `frame` and wait up to `timeoutMs` for its reply.
   * @param {Buffer} frame
   * @param {number} timeoutMs
   * @returns {Promise<Buffer | string | { refused: string }>} the reply; NO_ANSWER, UNSENT or
   *   CLOSED otherwise, or `{ refused }` when no answer came because the server refused the
   *   CURVE handshake (the reason in words)
   */
  attempt(frame, timeoutMs) {
    if (this._closed) return Promise.resolve(CLOSED);
    let conn;
    try {
      conn = this._connection();
    } catch {
      return Promise.resolve(UNSENT); // no socket to be had for this endpoint
    }
    const id = this._nextId;
    this._nextId = id + 1 < MAX_ID ? id + 1 : 1;
    const idFrame = Buffer.allocUnsafe(ID_BYTES);
    idFrame.writeUIntBE(id, 0, ID_BYTES);
    const pending = this._pending;
    return new Promise((resolve) => {
      let timer = null;
      const settle = (result) => {
        if (pending.get(id) !== settle) return;
        pending.delete(id);
        clearTimeout(timer);
        resolve(result);
      };
      pending.set(id, settle);
      timer = setTimeout(() => {
        // Silent, or refused? The monitor says, before the socket is closed (one read of it
        // at a time: attempts that time out together share it).
        if (conn.checking === null) {
          // Whatever happens to the monitor, the attempt ends: a silence is then NO_ANSWER.
          conn.checking = queuedRefusal(conn.events, conn.refusal).catch(() => null);
        }
        conn.checking.then((refusal) => {
          conn.refusal = refusal;
          settle(refusal === null ? NO_ANSWER : { refused: refusal });
          this._drop(conn);
        });
      }, timeoutMs);
      let sent;
      try {
        sent = conn.sock.send([idFrame, EMPTY, frame]);
      } catch (err) {
        sent = Promise.reject(err);
      }
      sent.catch(() => settle(UNSENT));
      if (!conn.reading) this._read(conn);
    });
  }

  /** Hand each reply to the attempt waiting for its id, while any waits; drop the rest. */
  async _read(conn) {
    conn.reading = true;
    const { sock } = conn;
    const pending = this._pending;
    try {
      while (pending.size > 0 && !sock.closed) {
        let frames;
        try {
          frames = await sock.receive();
        } catch (err) {
          if (!sock.closed && err && err.code === 'EAGAIN') continue; // nothing within the poll
          if (!sock.closed) sock.close(); // broken: the next attempt makes a new socket
          return;
        }
        if (frames.length === 3 && frames[0].length === ID_BYTES && frames[1].length === 0) {
          const settle = pending.get(frames[0].readUIntBE(0, ID_BYTES));
          if (settle !== undefined) settle(frames[2]);
        }
      }
    } finally {
      conn.reading = false;
    }
  }

  /**
   * An attempt on `conn` got no reply in time: close its socket (the next attempt
   * opens a new one); the other attempts waiting on it end with NO_ANSWER now.
   */
  _drop(conn) {
    if (this._conn !== conn) return;
    this._conn = null;
    for (const settle of [...this._pending.values()]) settle(NO_ANSWER);
    if (!conn.sock.closed) conn.sock.close();
  }

  /** Close the socket; attempts still waiting end with CLOSED. Idempotent. */
  close() {
    if (this._closed) return;
    this._closed = true;
    for (const settle of [...this._pending.values()]) settle(CLOSED);
    if (this._conn !== null && !this._conn.sock.closed) this._conn.sock.close();
    this._conn = null;
  }
}

module.exports = { CLOSED, Endpoint, SOCKET_OPTIONS };
