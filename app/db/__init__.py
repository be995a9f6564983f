"""PostgreSQL: the source of truth (tables, engine, repositories)."""
