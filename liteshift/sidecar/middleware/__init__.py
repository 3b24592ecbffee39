"""Plain ASGI middleware, one per module."""
