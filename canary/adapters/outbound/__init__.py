"""Linkerd's OutboundPolicies gRPC API (``io.linkerd.proxy.outbound``), as a client proxy sees it.

Who uses it: only ``canary.emulator`` (an import-linter contract), to learn which backends and
weights Linkerd's policy controller hands the proxies for an apex Service. It is the only place
that imports ``grpc`` and the protobuf messages. The message modules are generated from
Linkerd's protobufs at install time (``python -m canary.adapters.outbound.generate``, run by
``make venv``) into ``_generated/``, which is never committed.
"""
