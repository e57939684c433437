"""Mail sources: where the simulation's email comes from (synthetic or a real corpus)."""
