"""metrics — see DESIGN.md §4."""
