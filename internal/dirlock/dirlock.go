// Package dirlock locks a ledgerd data directory, so that two processes never
// open the same node and an auditor never reads a directory a node is
// writing without saying so.
//
// The lock is flock(2) on the directory itself, which no file deletion can
// take away: deleting the old lock file (ledgerd.lock) while a node runs
// used to let a second ledgerd lock a new file of the same name. ledgerd.lock
// is still created and locked, for tools that look for it, and its inode is
// checked after locking.
package dirlock

import "errors"

// FileName is the lock file ledgerd keeps in its data directory.
const FileName = "ledgerd.lock"

// ErrLocked reports a directory locked by another process (or another open
// file description of this one).
var ErrLocked = errors.New("dirlock: the data directory is locked by another process")
