"""The token store's lock excludes other processes, also where the OS has no fcntl (Windows).

Each side is a real process. With `fcntl` made unimportable (as on Windows) the lock must still
exclude: the store's own fcntl code silently did nothing there; filelock picks the platform's lock.
"""

from __future__ import annotations

import stat
import subprocess
import sys

import pytest

SIDE = """
import sys
if sys.argv[3] == "no-fcntl":
    sys.modules["fcntl"] = None  # `import fcntl` now fails, as on Windows
from infinstor_jupyterlab.credentials.tokens import TokenStore, TokenStoreError
store = TokenStore(sys.argv[1], lock_timeout=1.0, backend="file")
if sys.argv[2] == "hold":
    with store.lock():
        print("held", flush=True)
        sys.stdin.readline()  # until the test says so
else:
    try:
        with store.lock():
            print("acquired", flush=True)
    except TokenStoreError as exc:
        print("refused:", exc, flush=True)
"""


def side(path, role: str, platform: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SIDE, str(path), role, platform], text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs
    )


@pytest.mark.parametrize("platform", ["fcntl", "no-fcntl"])
def test_a_held_lock_excludes_another_process_until_released(tmp_path, platform):
    path = tmp_path / "credentials" / "tokens.json"
    holder = side(path, "hold", platform, stdin=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        out, err = side(path, "try", platform).communicate(timeout=60)
        assert out.startswith("refused: Timed out waiting for the credentials lock"), out + err
        assert "Traceback" not in err, err
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    out, err = side(path, "try", platform).communicate(timeout=60)
    assert out.strip() == "acquired", out + err
    lock_file = path.with_name("tokens.json.lock")
    if lock_file.exists():  # a private file, like the store itself
        assert stat.S_IMODE(lock_file.stat().st_mode) & 0o077 == 0
