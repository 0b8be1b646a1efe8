"""sim — see DESIGN.md §4."""
