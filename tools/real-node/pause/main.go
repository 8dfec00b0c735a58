// pause: the process that holds a pod sandbox's namespaces on the e2e real node (tools/real-node).
//
// It does what upstream's pause does and nothing more: as PID 1 of the pod's PID namespace (when the
// pod shares one) it reaps every orphan that is re-parented to it, and it exits 0 on SIGINT or
// SIGTERM so the runtime's stop is quick. Upstream's is C; this one is Go (built static with
// CGO_ENABLED=0) so the module's own toolchain builds it and no registry image is needed.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause (kubevisor real node)")
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "pause: warning: not PID 1")
	}
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			fmt.Fprintf(os.Stderr, "pause: shutting down on %v\n", s)
			os.Exit(0)
		}
		// Signals coalesce: one SIGCHLD may stand for many exits, so reap until none is left.
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
