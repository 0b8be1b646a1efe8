"""HTTPRoute router (Gateway API / Linkerd policy): sets stable and canary backend weights."""
