"""approvals — see DESIGN.md §4."""
