"""Where delivery events live: one interface, an embedded DuckDB default."""
