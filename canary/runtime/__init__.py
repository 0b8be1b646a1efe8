"""runtime — see DESIGN.md §4."""
