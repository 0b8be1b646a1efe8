"""canary: a progressive-delivery controller for Kubernetes.

Layers (enforced by import-linter, see pyproject.toml): ``cli`` composes ``runtime``, ``api``,
``adapters`` and ``emulator``; those talk to each other only through ``ports``; the pure
decision core (``core``, ``sim``) works on ``model`` values; ``errors`` is the bottom.
"""

__version__ = "0.1.0"
