"""adapters — see DESIGN.md §4."""
