//go:build unix

package main

import "github.com/ledgerd/ledgerd/internal/dirlock"

// lockDataDir takes the data directory's exclusive lock (flock on the
// directory itself, and on ledgerd.lock), so that two processes never open
// the same node, and returns its release.
func lockDataDir(dir string) (func(), error) { return dirlock.Lock(dir) }
