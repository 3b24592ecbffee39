"""The promotion engine as a library: criteria, readiness checks, copy, verification.

Used by the operator (automatic promotion) and by `liteshift promote` (the offline path).
"""
