"""The token store keeps the tokens in a keyring where one is configured, and only the
non-secret index in its 0600 file. A real keyring backend stands in for the OS one here (this
machine has no Secret Service): keyrings.alt's file keyring, shared across processes like an OS
keyring would be."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import keyring  # a runtime dependency
import keyrings.alt.file as alt_file  # the test extra: a real keyring backend for these tests
import pytest

from infinstor_jupyterlab.credentials.tokens import (
    KEYRING_SERVICE,
    Identity,
    TokenSet,
    TokenStore,
    TokenStoreError,
)

SERVICE = "https://mlflow.example.com"


@pytest.fixture
def plaintext_keyring(tmp_path, monkeypatch):
    """keyrings.alt's file keyring under tmp_path, as the process-wide keyring."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    previous = keyring.get_keyring()
    backend = alt_file.PlaintextKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def _tokens(access: str = "AT-in-keyring-123") -> TokenSet:
    return TokenSet(
        access_token=access,
        refresh_token="RT-in-keyring-456",
        id_token="ID-in-keyring-789",
        expires_at=time.time() + 600,
        identity=Identity(name="alice", org="acme", groups=["vision"]),
    )


def test_tokens_go_to_the_keyring_and_the_file_keeps_no_secret(tmp_path, plaintext_keyring):
    store = TokenStore(tmp_path / "creds" / "tokens.json", backend="keyring")
    assert store.vault is not None and "keyring" in store.location
    store.put(SERVICE, _tokens())

    text = store.path.read_text()
    for secret in ("AT-in-keyring-123", "RT-in-keyring-456", "ID-in-keyring-789"):
        assert secret not in text
    entry = json.loads(text)["services"][SERVICE]
    assert entry["secrets"] == "keyring" and entry["identity"]["name"] == "alice"
    assert "AT-in-keyring-123" in plaintext_keyring.get_password(KEYRING_SERVICE, f"{store.path}|{SERVICE}")

    got = TokenStore(store.path, backend="keyring").get(SERVICE)
    assert got.access_token == "AT-in-keyring-123" and got.refresh_token == "RT-in-keyring-456"
    assert got.identity.org == "acme"

    # A rotation (what a refresh does) is seen by a store that had cached the old value.
    store.put(SERVICE, _tokens("AT-rotated"))
    assert TokenStore(store.path, backend="keyring").get(SERVICE).access_token == "AT-rotated"

    assert store.delete(SERVICE).access_token == "AT-rotated"
    assert plaintext_keyring.get_password(KEYRING_SERVICE, f"{store.path}|{SERVICE}") is None
    assert store.get(SERVICE) is None


def test_another_process_reads_the_same_keyring(tmp_path, plaintext_keyring):
    store = TokenStore(tmp_path / "tokens.json", backend="keyring")
    store.put(SERVICE, _tokens())
    code = (
        "from infinstor_jupyterlab.credentials.tokens import TokenStore; import sys; "
        f"t = TokenStore(sys.argv[1]).get({SERVICE!r}); print(t.access_token == 'AT-in-keyring-123')"
    )
    env = {**os.environ, "INFINSTOR_TOKEN_BACKEND": "keyring"}
    out = subprocess.run([sys.executable, "-c", code, str(store.path)], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr
    # Without the keyring the entry is unusable (never half-read): sign in again.
    env["INFINSTOR_TOKEN_BACKEND"] = "file"
    out = subprocess.run(
        [sys.executable, "-c", code.replace("t.access_token == 'AT-in-keyring-123'", "t"), str(store.path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "None", out.stderr


def test_auto_uses_only_an_os_keyring(tmp_path, plaintext_keyring):
    # keyrings.alt's plaintext file is no better than our 0600 file: auto keeps the file.
    store = TokenStore(tmp_path / "tokens.json")
    assert store.vault is None and store.location == str(store.path)
    store.put(SERVICE, _tokens())
    assert "AT-in-keyring-123" in store.path.read_text()


def test_a_bad_backend_choice_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(TokenStoreError, match="not one of auto, file, keyring"):
        TokenStore(tmp_path / "tokens.json", backend="vault")
    monkeypatch.setenv("INFINSTOR_TOKEN_BACKEND", "vault")
    out = subprocess.run(
        [sys.executable, "-m", "infinstor_jupyterlab.cli", "whoami", "--service", SERVICE, "--token-store", str(tmp_path / "tokens.json")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert out.returncode == 2 and "INFINSTOR_TOKEN_BACKEND" in out.stderr, (out.returncode, out.stderr)
