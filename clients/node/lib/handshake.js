'use strict';
/**
 * What a CURVE socket's monitor says about its security handshakes.
 *
 * A server that refuses the client's CURVE handshake (a key not in its
 * --curve-clients, a plain client at a CURVE server, the wrong server key) never
 * answers: to the client it looks like a silent server. libzmq tells the truth on
 * the socket's monitor (zeromq.js `socket.events`): `handshake:error:auth`,
 * `handshake:error:protocol` or `handshake:error:other`, and `handshake` once one
 * succeeded. The same words as the Python client (seqgen_common/handshake.py).
 *
 * The monitor is made before the socket connects, and read only when an attempt
 * got no answer in time, just before that socket is closed: a read that waits on
 * an idle client's monitor would keep the Node.js process alive. Events wait in
 * the monitor's queue meanwhile; a healthy connection makes only a few.
 */

const MISMATCH = "the client's and the server's CURVE settings do not match: a plain client at "
  + 'a CURVE server, a CURVE client at a plain server, or the wrong server public key';

/** The reason, in words, of a failed handshake event; null for any other event. */
function describeFailure(event) {
  switch (event.type) {
    case 'handshake:error:auth': {
      const status = event.error && event.error.status !== undefined ? ` (ZAP status ${event.error.status})` : '';
      return `the server refused this client's CURVE public key${status}: the key is not in `
        + "the server's --curve-clients (an ephemeral key never is)";
    }
    case 'handshake:error:protocol':
      return `the security handshake failed (a ZMTP protocol error): ${MISMATCH}`;
    case 'handshake:error:other':
      return `the server ended the security handshake: ${MISMATCH}`;
    default:
      return null;
  }
}

/**
 * The refusal the queued events of `observer` tell (null: none, or the last
 * handshake succeeded), given the one known before (`previous`). Reads only what
 * is queued: a read that would wait is left to end when the socket is closed.
 * @param {import('zeromq').Observer} observer
 * @param {string | null} previous
 * @returns {Promise<string | null>}
 */
async function queuedRefusal(observer, previous) {
  let refusal = previous;
  for (;;) {
    if (observer.closed) return refusal;
    let next;
    try {
      next = observer.receive();
    } catch {
      return refusal; // closed with its socket, or already being read: nothing more to learn
    }
    const queued = await Promise.race([
      next.then((event) => event, () => null),
      new Promise((resolve) => { setImmediate(resolve, undefined); }),
    ]);
    if (queued === undefined) {
      next.catch(() => {}); // ends with the socket's close
      return refusal;
    }
    if (queued === null) return refusal;
    if (queued.type === 'handshake') refusal = null;
    else refusal = describeFailure(queued) ?? refusal;
  }
}

module.exports = { describeFailure, queuedRefusal };
