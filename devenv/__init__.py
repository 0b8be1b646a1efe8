"""A real local control plane for canary's integration tests and demo, without Docker.

`python -m devenv up` (what `make dev-up` runs) starts etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok and Prometheus on 127.0.0.1 and writes
`.dev/kubeconfig` and `.dev/env`; `down` stops them. Binaries are built or unpacked once into
`~/.cache/canary/`. Standard library only: it runs before the project's virtualenv exists.

Modules: `layout` (paths, versions), `tools` (build and cache), `pki` (certificates),
`processes` (process groups), `probes` (health checks), `prometheus` and `components` (command
lines and configuration), `cluster` (the orchestration), `__main__` (the CLI).
"""
