//go:build !unix

package dirlock

// Lock does nothing where flock is unavailable: do not start two ledgerd
// processes on one data directory.
func Lock(dir string) (func(), error) { return func() {}, nil }

// LockShared does nothing where flock is unavailable.
func LockShared(dir string) (func(), error) { return func() {}, nil }
