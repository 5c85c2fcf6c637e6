//go:build !linux

package pgcluster

import "syscall"

// sysProcAttr runs a child as cred (nil: as this process's user) in a
// process group of its own. Only Linux has a parent-death signal: deathSig
// is not sent here.
func sysProcAttr(cred *syscall.Credential, _ syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true}
}
