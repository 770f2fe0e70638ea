//go:build !unix

package main

// descriptorLimit returns 0 (unknown) where RLIMIT_NOFILE does not exist.
func descriptorLimit() uint64 { return 0 }
