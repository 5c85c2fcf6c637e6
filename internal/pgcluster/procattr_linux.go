package pgcluster

import "syscall"

// sysProcAttr runs a child as cred (nil: as this process's user) in a
// process group of its own, and sends it deathSig when this process dies.
func sysProcAttr(cred *syscall.Credential, deathSig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: deathSig}
}
