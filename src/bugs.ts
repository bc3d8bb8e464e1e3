// Deliberate bugs, for proving that the Jepsen harness (jepsen/) catches what it claims to catch (issue 7).
//
// Every switch is false here, and nothing in Keel reads a flag, an environment variable or a file to change
// that: a production build (`npm run build`, `npm ci`) can only ever run with these values. The self-test
// (`npm run jepsen:selftest`, jepsen/broken/) copies dist/ into its run directory and overwrites that copy's
// bugs.js with one switch on; the copy is the "broken build" it starts members from.

export interface BugSwitches {
  /** A member (follower or leader) answers a linearizable read from its own state without a ReadIndex round
   *  (stale reads once it is partitioned away, behind, or a deposed leader). */
  readonly readsWithoutReadIndex: boolean;
  /** Followers acknowledge before writing: their WAL records stay in the process's memory for up to
   *  LAZY_WAL_MS (then written without fsync) while their votes and append acknowledgements go out as if
   *  durable, so a SIGKILL loses what they promised (as a page cache lost in a power cut would). */
  readonly ackBeforeFsync: boolean;
  /** The leader commits an entry of an earlier term by counting replicas (Raft §5.4.2, Figure 8). */
  readonly commitByCounting: boolean;
}

export const BUGS: BugSwitches = Object.freeze({
  readsWithoutReadIndex: false,
  ackBeforeFsync: false,
  commitByCounting: false,
});

/** How long the ackBeforeFsync bug keeps a follower's WAL records in memory before writing them (without
 *  fsync); below the election timeout, since a follower waits for that write before it applies. */
export const LAZY_WAL_MS = 500;
