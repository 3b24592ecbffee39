"""liteshift: SQLite-first data stores with verified, online promotion to Postgres."""

__version__ = "0.1.0"
