"""What the functions' handlers share at the HTTP edge (parsing and answering, no use cases)."""
