"""The repository layer: one domain interface, two engines (SQLite via APSW, Postgres via psycopg)."""
