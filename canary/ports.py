"""The small Protocols through which the runtime talks to the world (filled in by adapters)."""
