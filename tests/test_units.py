"""Unit tests of single functions (no servers)."""

from __future__ import annotations

import os
import stat

import pytest

from infinstor_jupyterlab.auth.secret import load_or_create_secret
from infinstor_jupyterlab.mlflow_plugin import credentials
from infinstor_jupyterlab.mlflow_plugin.run_context import InfinStorRunContextProvider, lab_relative_path
from infinstor_jupyterlab.service.single_user import SecretChecker


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
