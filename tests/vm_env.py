"""The VM's Python environment, built as the EC2 user data builds it, once per test session.

The user data (ec2/pool.py `user_data`) creates `/opt/infinstor` with `python3 -m venv`, upgrades
pip and pip-installs the package spec (`infinstor_jupyterlab[ec2]==VERSION`). Here the same lines
of that script run under bash with `/opt/infinstor` replaced by a temporary folder and the package
spec by a wheel built from this checkout (with the `[ec2]` extra): a clean venv holding only the
package and what it declares. Nothing from the development venv leaks in.

The "AMI" here has the same Python version as the lab (its python3 is the lab's base
interpreter): MLflow's uv env manager builds job environments for the kernel's Python version, and
a VM without it would download one, which this machine (registries only) cannot.

The systemd unit runs the agent with systemd's default PATH and no venv on it; `unit_command`
returns the unit's ExecStart (paths mapped to the test's folders) and `UNIT_PATH` that PATH.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# systemd's default PATH for services (systemd.exec(5), "Environment variables in spawned processes").
UNIT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
VENV = "/opt/infinstor"


@dataclass
class VmEnv:
    prefix: Path  # what /opt/infinstor is on the VM
    wheel: Path

    @property
    def python(self) -> Path:
        return self.prefix / "bin" / "python"

    def unit_command(self, user_data: str, config: Path, work_dir: Path, instance_id: str) -> list[str]:
        """The unit's ExecStart from `user_data`, mapped onto this machine's folders."""
        match = re.search(r"^ExecStart=(.+)$", user_data, re.MULTILINE)
        assert match, "the user data writes no ExecStart"
        argv = match.group(1).split()
        mapped = [
            a.replace(VENV, str(self.prefix)).replace("/etc/infinstor/agent.json", str(config)).replace("/var/lib/infinstor", str(work_dir))
            for a in argv
        ]
        return [*mapped, "--instance-id", instance_id]

    def unit_environment(self, home: Path, extra: dict[str, str]) -> dict[str, str]:
        """What a systemd service gets: the default PATH, a HOME, nothing of the lab or a venv
        (plus this machine's network trust settings, see `machine_network_env`)."""
        env = {"PATH": UNIT_PATH, "HOME": str(home), "LANG": "C.UTF-8", **machine_network_env()}
        env.update(extra)
        return env


def machine_network_env() -> dict[str, str]:
    """This machine reaches the package registries through mirrors and a TLS-inspecting proxy
    whose CA is in these settings; a VM on AWS needs none of them. They say nothing about Python."""
    names = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY")
    env = {k: v for k, v in os.environ.items() if k in names or k.startswith(("PIP_", "UV_INDEX", "UV_EXTRA_INDEX"))}
    return env


def _install_lines(package_spec: str) -> str:
    """The venv lines of the real user data (between `if [ ! -x ...python ]; then` and `fi`)."""
    from infinstor_jupyterlab.ec2.pool import user_data

    script = user_data({"bucket": "b"}, package_spec)
    match = re.search(r"^if \[ ! -x /opt/infinstor/bin/python \]; then\n(.*?)^fi$", script, re.MULTILINE | re.DOTALL)
    assert match, script
    return match.group(1)


@pytest.fixture(scope="session")
def vm_env(tmp_path_factory) -> VmEnv:
    base = tmp_path_factory.mktemp("vm")
    dist = base / "dist"
    log = base / "build.log"
    with open(log, "wb") as out:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)],
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    [wheel] = dist.glob("infinstor_jupyterlab-*.whl")
    prefix = base / "opt-infinstor"
    ami_bin = base / "ami-bin"  # the AMI's python3 (see the module's docstring)
    ami_bin.mkdir()
    (ami_bin / "python3").symlink_to(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    lines = _install_lines(f"{wheel}[ec2]").replace(VENV, str(prefix))
    env = {"PATH": f"{ami_bin}:{UNIT_PATH}", "HOME": str(base / "root-home"), "LANG": "C.UTF-8", **machine_network_env()}
    with open(log, "ab") as out:
        result = subprocess.run(["bash", "-euxo", "pipefail", "-c", lines], env=env, stdout=out, stderr=subprocess.STDOUT, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"building the VM's venv failed; see {log}:\n{log.read_text()[-3000:]}")
    return VmEnv(prefix=prefix, wheel=wheel)
