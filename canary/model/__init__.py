"""pydantic v2 models of canary's resources and their status. No I/O."""
