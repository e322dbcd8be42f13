"""Pure rules of the inspection service (no I/O)."""
