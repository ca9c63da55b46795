"""Unit tests of single functions (no servers)."""

from __future__ import annotations

import os
import stat

import pytest

from infinstor_jupyterlab.credentials.secret import load_or_create_secret
from infinstor_jupyterlab.mlflow_plugin import credentials
from infinstor_jupyterlab.mlflow_plugin.run_context import InfinStorRunContextProvider, lab_relative_path
from infinstor_jupyterlab.tracking_service.single_user import SecretChecker


def test_secret_file_is_private_and_stable(tmp_path):
    path = tmp_path / "state" / "secret"
    first = load_or_create_secret(path)
    assert len(first) >= 40
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    os.chmod(path, 0o644)
    assert load_or_create_secret(path) == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_secret_checker_is_exact():
    checker = SecretChecker("s3cret")
    assert checker.is_authorized("Bearer s3cret")
    assert checker.is_authorized(b"Bearer s3cret")
    for bad in (None, "", "Bearer s3cre", "Bearer s3cretX", "bearer x", "Basic czNjcmV0"):
        assert not checker.is_authorized(bad)
    with pytest.raises(ValueError):
        SecretChecker("")


@pytest.mark.parametrize(
    "a,b,same",
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000/", True),
        ("http://127.0.0.1:5000/api", "http://127.0.0.1:5000", True),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5001", False),
        ("https://127.0.0.1:5000", "http://127.0.0.1:5000", False),
        ("http://evil.example:5000", "http://127.0.0.1:5000", False),
        ("databricks", "http://127.0.0.1:5000", False),
    ],
)
def test_same_origin(a, b, same):
    assert credentials.same_origin(a, b) is same


def test_credentials_only_for_the_embedded_service(tmp_path, monkeypatch):
    secret_file = tmp_path / "secret"
    secret_file.write_text("abc\n")
    monkeypatch.setenv("INFINSTOR_EMBEDDED_URI", "http://127.0.0.1:5555")
    monkeypatch.setenv("INFINSTOR_SECRET_FILE", str(secret_file))
    assert credentials.authorization_for("http://127.0.0.1:5555") == "Bearer abc"
    assert credentials.authorization_for("http://127.0.0.1:6666") is None
    assert credentials.authorization_for("https://mlflow.example.com") is None
    secret_file.unlink()
    assert credentials.authorization_for("http://127.0.0.1:5555") is None


def test_lab_relative_path(tmp_path):
    root = tmp_path / "root"
    assert lab_relative_path(str(root / "a" / "b.ipynb"), str(root)) == "a/b.ipynb"
    assert lab_relative_path("a/b.ipynb", str(root)) == "a/b.ipynb"
    outside = str(tmp_path / "elsewhere.ipynb")
    assert lab_relative_path(outside, str(root)) == outside


def test_run_context_provider(monkeypatch, tmp_path):
    provider = InfinStorRunContextProvider()
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.delenv("INFINSTOR_USER", raising=False)
    assert not provider.in_context()
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "nb" / "x.ipynb"))
    monkeypatch.setenv("INFINSTOR_SERVER_ROOT", str(tmp_path))
    monkeypatch.setenv("INFINSTOR_USER", "alice")
    assert provider.in_context()
    assert provider.tags() == {
        "mlflow.source.name": "nb/x.ipynb",
        "mlflow.source.type": "NOTEBOOK",
        "mlflow.user": "alice",
        "infinstor.notebook.path": str(tmp_path / "nb" / "x.ipynb"),
    }
    # A console (not a notebook) keeps MLflow's own source tags.
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "console-1"))
    assert provider.tags() == {"mlflow.user": "alice"}
    # A job's kernel (no session): the job's runner names the notebook.
    monkeypatch.delenv("JPY_SESSION_NAME")
    monkeypatch.delenv("INFINSTOR_USER")
    monkeypatch.setenv("INFINSTOR_SOURCE_NOTEBOOK", "models/iris.ipynb")
    assert provider.in_context()
    assert provider.tags() == {"mlflow.source.name": "models/iris.ipynb", "mlflow.source.type": "NOTEBOOK"}


def test_plugins_are_registered():
    from importlib.metadata import entry_points

    assert "infinstor" in {e.name for e in entry_points(group="mlflow.app")}
    assert "infinstor" in {e.name for e in entry_points(group="mlflow.request_header_provider")}
    assert "infinstor" in {e.name for e in entry_points(group="mlflow.run_context_provider")}


def test_import_mlflow_loads_our_plugins_without_the_oidc_client():
    """MLflow loads our plugins on every `import mlflow` (kernels, the CLI, the service's Lambda cold
    start): they resolve service URLs, and need not import the OIDC client (authlib) to do so."""
    import subprocess
    import sys

    probe = (
        "import json, sys, mlflow\n"
        "from mlflow.tracking._tracking_service.utils import _tracking_store_registry\n"
        "print(json.dumps({'store': 'infinstor' in _tracking_store_registry._registry,\n"
        "                  'loaded': sorted(m for m in sys.modules if m.split('.')[0] == 'authlib'\n"
        "                                   or m.startswith('infinstor_jupyterlab.credentials.'))}))\n"
    )
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    import json

    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["store"], "the infinstor:// tracking store plugin is registered"
    assert "infinstor_jupyterlab.credentials.urls" in seen["loaded"]
    assert [m for m in seen["loaded"] if m.startswith("authlib") or m.endswith(".oidc") or m.endswith(".manager")] == []


def test_lambda_instance_is_built_without_the_cyclic_gc_then_frozen(monkeypatch):
    """The serverless cold start: the instance (MLflow's server imported, the app built) is made with
    the collector off, what it made is frozen, and the collector is back on afterwards, also when
    building fails."""
    import gc

    from infinstor_jupyterlab.tracking_service import serverless

    seen: dict[str, object] = {}

    class Built:
        def __init__(self) -> None:
            seen["gc during the build"] = gc.isenabled()
            self.objects = [[] for _ in range(5000)]  # what the imports leave behind, in small

    monkeypatch.setattr(serverless, "_Instance", Built)
    monkeypatch.setattr(serverless, "_instance", None)
    frozen = gc.get_freeze_count()
    try:
        built = serverless.instance()
        assert isinstance(built, Built) and serverless.instance() is built
        assert seen["gc during the build"] is False
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + 5000

        class Fails:
            def __init__(self) -> None:
                raise RuntimeError("no database secret")

        monkeypatch.setattr(serverless, "_Instance", Fails)
        monkeypatch.setattr(serverless, "_instance", None)
        with pytest.raises(RuntimeError):
            serverless.instance()
        assert gc.isenabled()
    finally:
        gc.unfreeze()
