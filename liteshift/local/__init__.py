"""Throwaway local servers (Postgres, Prometheus) for the demo, the benchmarks and the tests."""
