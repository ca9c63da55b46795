"""The authenticated MLflow proxy: `<base_url>infinstor/api/mlflow/<path>` → the tracking server.

`policy` decides which paths may be forwarded (pure); `forwarder` streams requests and responses
between the browser and the tracking server, adding the user's credentials server-side.
"""
