//go:build unix

package main

import "syscall"

// descriptorLimit returns the process's file descriptor limit
// (RLIMIT_NOFILE, soft), or 0 if unknown or unlimited.
func descriptorLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur == ^uint64(0) {
		return 0
	}
	return lim.Cur
}
