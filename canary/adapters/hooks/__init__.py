"""hooks — the policy's HTTP hooks, called in the background (see docs/hooks.md)."""
