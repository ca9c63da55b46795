"""deploy/kubernetes: every overlay renders with `kubectl kustomize` (offline) into what issue 14
asks of a deployment, and passes `kubernetes-validate --strict` (scripts/check-kubernetes.sh, which
CI also runs as its own step). No cluster here: the manifests are checked statically; the app in
them is the one the other tests run as a process."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p.name for p in (KUBERNETES / "overlays").iterdir() if p.is_dir())


def needs(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed (CI must have it)")
        pytest.skip(f"{tool} is not installed")
    return path


def render(overlay: str) -> list[dict]:
    text = subprocess.run(
        [needs("kubectl"), "kustomize", str(KUBERNETES / "overlays" / overlay)], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(docs: list[dict]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for doc in docs:
        found.setdefault(doc["kind"], []).append(doc)
    return found


def test_overlays_are_the_trial_and_production_ones():
    assert OVERLAYS == ["production", "trial"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_has_what_a_deployment_needs(overlay):
    docs = by_kind(render(overlay))
    deployment = next(d for d in docs["Deployment"] if d["metadata"]["name"] == "infinstor-tracking")
    pod = deployment["spec"]["template"]["spec"]
    server = next(c for c in pod["containers"] if c["name"] == "server")
    # Non-root, read-only root filesystem, no privilege escalation, no capabilities.
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    for container in [*pod["containers"], *pod.get("initContainers", [])]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert {"requests", "limits"} <= set(container["resources"])  # requests and limits
        assert container["image"].startswith("registry.example.com/infinstor/infinstor-tracking:")
    # Liveness without the database, readiness with it.
    assert server["livenessProbe"]["httpGet"]["path"] == "/health"
    assert server["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert server["command"] == ["mlflow"] and "--enable-workspaces" in server["args"]
    # Spread over zones.
    assert "topology.kubernetes.io/zone" in {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    # A new version serves only once the migration Job has migrated: its init container waits for it.
    wait = pod["initContainers"][0]["command"]
    assert wait[:5] == ["infinstor", "service", "migrate", "--check", "--wait"]
    job = docs["Job"][0]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["infinstor", "service", "migrate"]
    # Configuration and policy from a ConfigMap; secrets only referenced, never inline.
    assert "Secret" not in docs
    config = next(d for d in docs["ConfigMap"] if d["metadata"]["name"].startswith("infinstor-config"))
    assert {"service.yaml", "policy.yaml"} <= set(config["data"])
    assert yaml.safe_load(config["data"]["service.yaml"])["oidc"]["leeway"] <= 5
    env = {e["name"]: e for e in server["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"]["name"] == "infinstor-database"
    assert env["INFINSTOR_JOB_TOKEN_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "infinstor-secrets"
    assert all("value" not in e for e in server["env"])
    env_map = next(d for d in docs["ConfigMap"] if d["metadata"]["name"].startswith("infinstor-env"))["data"]
    assert env_map["INFINSTOR_SERVICE_MODE"] == "company" and env_map["MLFLOW_SERVER_ALLOWED_HOSTS"]
    assert not any(word in value.lower() for value in env_map.values() for word in ("password", "secret"))
    # Service, Ingress, disruption budget, network policy.
    named = lambda kind: next(d for d in docs[kind] if d["metadata"]["name"] == "infinstor-tracking")  # noqa: E731
    assert named("Service")["spec"]["ports"][0]["targetPort"] == "http"
    assert named("Ingress")["spec"]["tls"][0]["secretName"] == "infinstor-tls"
    assert named("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert {"Ingress", "Egress"} <= set(named("NetworkPolicy")["spec"]["policyTypes"])
    if overlay == "production":
        hpa = docs["HorizontalPodAutoscaler"][0]["spec"]
        assert hpa["minReplicas"] >= 3 and hpa["metrics"][0]["resource"]["name"] == "cpu"
        assert env_map["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
        assert "StatefulSet" not in docs  # an external PostgreSQL
    else:
        assert docs["StatefulSet"][0]["metadata"]["name"] == "infinstor-postgres"  # PostgreSQL in the cluster
        postgres = docs["StatefulSet"][0]["spec"]["template"]["spec"]["containers"][0]
        assert postgres["env"][-1]["valueFrom"]["secretKeyRef"]["name"] == "infinstor-postgres"
        assert deployment["spec"]["strategy"]["type"] == "Recreate" and "HorizontalPodAutoscaler" not in docs


@pytest.mark.slow  # kubectl and kubernetes-validate over every overlay
def test_the_schema_validation_passes_and_would_catch_a_mistake(tmp_path):
    """scripts/check-kubernetes.sh validates every overlay (strict); a misspelt field fails it."""
    needs("kubectl")
    needs("kubernetes-validate")
    result = subprocess.run(["bash", str(ROOT / "scripts" / "check-kubernetes.sh")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(f"overlay {o}:" in result.stdout for o in OVERLAYS)
    docs = render("production")
    broken = next(d for d in docs if d["kind"] == "Deployment")
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/health/ready", "port": "http"}}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    checked = subprocess.run(
        ["kubernetes-validate", "--strict", "--kubernetes-version", "1.32.0", str(path)], capture_output=True, text=True, timeout=300
    )
    assert checked.returncode != 0 and "readinesProbe" in checked.stdout + checked.stderr
