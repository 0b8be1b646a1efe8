"""The mesh emulator: plays the Linkerd proxies of a local cluster (DESIGN.md §6).

It reads Services, Pods and routes through ``canary.adapters.kube.meshview``, simulates traffic
with the pure model in ``canary.sim``, and serves each pod's proxy ``/metrics`` for a real
Prometheus. Entry point: ``canary.emulator.command.main`` (``python -m canary.emulator``).
"""
