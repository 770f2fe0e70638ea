//go:build !unix

package main

// lockDataDir does nothing where flock is unavailable: do not start two
// ledgerd processes on one data directory.
func lockDataDir(dir string) (func(), error) { return func() {}, nil }
