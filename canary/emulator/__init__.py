"""emulator — see DESIGN.md §4."""
