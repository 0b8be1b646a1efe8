"""routers — see DESIGN.md §4."""
