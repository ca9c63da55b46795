"""Jobs: MLflow projects (or converted notebooks) run on a target, tracked and persisted."""
