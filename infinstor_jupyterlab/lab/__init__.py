"""The jupyter_server extension: everything that runs inside the user's Jupyter server."""
