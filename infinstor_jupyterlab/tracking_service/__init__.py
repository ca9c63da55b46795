"""The InfinStor tracking service: MLflow's own server with our identity layer in front."""
