"""InfinStor for JupyterLab: enterprise MLflow from the lab."""

try:
    from ._version import __version__
except ImportError:  # pragma: no cover - only in a source tree that was never built
    import warnings

    warnings.warn("Importing 'infinstor_jupyterlab' outside a proper installation.", stacklevel=2)
    __version__ = "dev"


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "infinstor-jupyterlab"}]


def _jupyter_server_extension_points():
    from .lab.app import InfinStor

    return [{"module": "infinstor_jupyterlab", "app": InfinStor}]
