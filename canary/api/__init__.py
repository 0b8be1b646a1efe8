"""api — see DESIGN.md §4."""
