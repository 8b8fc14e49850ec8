'use strict';

/**
 * The client's counters (`client.stats`): the names of the Python client's `Stats`, in
 * camelCase, with the same meanings. docs/client.md ("Statistics") is the one table of what
 * each counts; tests/unit/test_client_stats.py checks that the two clients, index.d.ts and
 * that table name the same counters.
 */
function newStats() {
  return {
    requests: 0,
    calls: 0,
    coalescedCalls: 0,
    lostNumbers: 0,
    attempts: 0,
    timeouts: 0,
    hedges: 0,
    hedgeWins: 0,
    lateAnswers: 0,
  };
}

module.exports = { newStats };
