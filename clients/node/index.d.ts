/// <reference types="node" />
/**
 * seqgen: short, unique, roughly increasing 64-bit numbers from seqgen servers or proxies.
 *
 * ```js
 * const seqgen = require('seqgen')(['tcp://10.0.0.11:6410', 'tcp://10.0.0.12:6410']);
 * seqgen.next('invoice', (err, value) => { ... });  // value: a BigInt
 * const value = await seqgen.next('invoice');
 * ```
 */

/**
 * A client for `endpoints` (one ZeroMQ URI or several; default: the comma-separated
 * `SEQGEN_ENDPOINTS`, read now, else `tcp://127.0.0.1:6410`).
 * Throws TypeError, RangeError or Error for bad endpoints, options or key files.
 */
declare function seqgen(endpoints?: string | readonly string[] | null, options?: seqgen.Options): seqgen.Client;
/** A client for the default endpoints, with these options. */
declare function seqgen(options: seqgen.Options): seqgen.Client;

declare namespace seqgen {
  /** Client options; durations in milliseconds. */
  interface Options {
    /** How long one attempt on one endpoint waits for its reply. Default 1000. */
    timeoutMs?: number;
    /** How long one call may take in all, failovers included. Default 5000. */
    deadlineMs?: number;
    /** How long an endpoint that failed is skipped before one call probes it (doubles per failure). Default 1000. */
    backoffMs?: number;
    /** The longest back-off. Default 30000. */
    maxBackoffMs?: number;
    /**
     * Turns on CURVE: the servers' (or proxies') public key, as z85 text (40 characters)
     * or the path of its certificate file `NAME.key` (as written by `seqgen keygen`).
     */
    serverPublicKey?: string | Buffer | null;
    /**
     * This client's key pair: the path of its `NAME.key_secret` file, or a z85 secret key.
     * Without it a throw-away pair is used (only servers that accept any client take it).
     */
    clientSecretKey?: string | Buffer | null;
    /** Concurrent `next()` calls for one name share one request. Default true. */
    coalesce?: boolean;
    /** An attempt unanswered within the hedge delay (2 x recent p99, 10..50 ms) is sent to the
     *  next healthy endpoint too, within a budget of 5 % extra requests. Default true. */
    hedge?: boolean;
  }

  /** Options of one call. */
  interface CallOptions {
    /** This call's deadline instead of the client's `deadlineMs`. */
    deadlineMs?: number;
    /** Gives up the call when aborted (rejects with an `AbortError`, code `ABORT_ERR`). */
    signal?: AbortSignal;
  }

  type Callback<T> = (err: SeqgenError | Error | null, value?: T) => void;

  /** Counters since the client was made: the Python client's `Stats`, camelCase, with the same
   *  meanings (docs/client.md, "Statistics", is the one table of what each counts). */
  interface Stats {
    /** Requests sent for `next()` calls (a failover retry or a hedge is part of its request). */
    requests: number;
    /** `next()` calls served with a number. */
    calls: number;
    /** `next()` calls served by a request they shared with at least one other call. */
    coalescedCalls: number;
    /** Numbers that came for this client and that no caller took (callers that gave up, late
     *  answers). */
    lostNumbers: number;
    /** Requests put on the wire to one endpoint, by every kind of call. */
    attempts: number;
    /** Attempts that got no answer within their timeout. */
    timeouts: number;
    /** Extra attempts sent because the first had not answered within the hedge delay. */
    hedges: number;
    /** Requests answered by their hedge before their first attempt. */
    hedgeWins: number;
    /** Answers that came after the other attempt of their request had won; never delivered. */
    lateAnswers: number;
  }

  class Client {
    constructor(endpoints?: string | readonly string[] | null, options?: Options);
    /** The next number for `name`. */
    next(name: string, options?: CallOptions): Promise<bigint>;
    next(name: string, callback: Callback<bigint>): void;
    next(name: string, options: CallOptions | undefined, callback: Callback<bigint>): void;
    /** `count` (1..1000) numbers for `name` in one round trip, ascending; never coalesced. */
    nextMany(name: string, count: number, options?: CallOptions): Promise<bigint[]>;
    nextMany(name: string, count: number, callback: Callback<bigint[]>): void;
    nextMany(name: string, count: number, options: CallOptions | undefined, callback: Callback<bigint[]>): void;
    /** The highest number this client has received for `name` (0n when none). */
    last(name: string): bigint;
    /** Close the sockets; calls still waiting fail with code `CLOSED`. Idempotent. */
    close(): void;
    readonly stats: Stats;
    readonly endpoints: readonly string[];
    readonly closed: boolean;
    readonly options: Readonly<{
      timeoutMs: number;
      deadlineMs: number;
      backoffMs: number;
      maxBackoffMs: number;
      coalesce: boolean;
      hedge: boolean;
      /** Whether CURVE is on (the keys themselves are not shown). */
      curve: boolean;
    }>;
  }

  type Code =
    | 'BAD_REQUEST'
    | 'BAD_NAME'
    | 'BAD_LAST'
    | 'BAD_COUNT'
    | 'EXHAUSTED'
    | 'UNAVAILABLE'
    | 'INTERNAL'
    | 'CLOSED'
    | 'AUTH';

  /** Every error of a call: `code` is the wire code, UNAVAILABLE, CLOSED, or AUTH (the
   *  endpoints refused this client's CURVE handshake). */
  class SeqgenError extends Error {
    constructor(code: string, message: string);
    readonly code: Code | string;
  }

  const codes: Readonly<{ [K in Code]: K }>;
  /** tcp://127.0.0.1:6410 */
  const DEFAULT_ENDPOINT: string;
  /** SEQGEN_ENDPOINTS */
  const ENDPOINTS_ENV: string;
  /** 2^63 - 1, the largest number seqgen issues. */
  const MAX_VALUE: bigint;
  /** 1000, the most numbers one request may ask for. */
  const MAX_COUNT: number;
  /** 200, the longest name in UTF-8 bytes. */
  const MAX_NAME_BYTES: number;
}

export = seqgen;
