"""Credentials: the embedded service's per-install secret (and, later, signed-in users' tokens)."""
