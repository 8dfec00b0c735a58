// The real node's sandbox ("pause") image entry point: no dependencies, built by ../build.sh.
module kubevisor.local/real-node/pause

go 1.25.0
