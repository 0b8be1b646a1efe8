"""notifiers — see DESIGN.md §4."""
