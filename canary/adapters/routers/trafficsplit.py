"""TrafficSplit router (SMI, linkerd-smi): sets stable and canary backend weights."""
