"""kube — see DESIGN.md §4."""
