// Bounded polling: the only way these tests wait for the server.

import { setTimeout as sleep } from "node:timers/promises";

/**
 * Calls fn until it returns something other than undefined, and returns that.
 * Throws when the deadline (ms since epoch) or timeoutMs passes; errors thrown
 * by fn propagate at once. `what` names the condition in the timeout message;
 * `last` (optional) describes the last observation.
 */
export async function pollUntil(fn, { timeoutMs = 10_000, deadline, intervalMs = 25, what = "condition", describe } = {}) {
  const end = deadline ?? Date.now() + timeoutMs;
  let attempts = 0;
  let last;
  for (;;) {
    attempts++;
    const v = await fn((obs) => (last = obs));
    if (v !== undefined) return v;
    if (Date.now() >= end) {
      const seen = last === undefined ? "" : `; last seen: ${describe ? describe(last) : JSON.stringify(last)}`;
      throw new Error(`timed out waiting for ${what} after ${attempts} attempts${seen}`);
    }
    await sleep(intervalMs);
  }
}
