"""MLflow plugins registered by this package (see the entry points in pyproject.toml)."""
