#!/usr/bin/env bash
# Installs every test dependency (Debian chromium, the package with its test extras, npm
# packages) and runs every suite: the README's command 1 as a newcomer runs it, jest, pytest,
# schemathesis, jupyterlab.browser_check and Galata.
# Each suite runs even if an earlier one failed; the exit code is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
results="$root/.test-results"
rm -rf "$results" && mkdir -p "$results"
export PIP_DISABLE_PIP_VERSION_CHECK=1 MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
# Browser tests keep their screenshots here (e.g. service-webui/, the walk of MLflow's web UI).
export INFINSTOR_TEST_RESULTS="$results"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

step() { printf '\n==== %s ====\n' "$*"; }
failed_suites=()

step "system packages"
# Debian chromium for the browser tests; PostgreSQL's server binaries for the tracking service's
# tests on a real PostgreSQL (a throwaway cluster started by the tests themselves).
apt_packages=()
command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || apt_packages+=(postgresql)
if [ ${#apt_packages[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_packages[@]}" >/dev/null \
    || { echo "could not install ${apt_packages[*]}"; exit 1; }
fi
chromium --version
ls -d /usr/lib/postgresql/*/bin/initdb

step "newcomer: the README's command 1 in a fresh virtualenv, no extras"
# Before the test extras reach this Python, so they cannot hide a missing runtime dependency. The
# install and the lab run in their own fresh venv (scripts/newcomer.py); this Python only drives
# chromium, with the playwright the test extra names.
playwright_req=$(grep -oE '^ *"playwright[^"]*"' pyproject.toml | head -n 1 | tr -d ' "')
python -m pip install --quiet "$playwright_req" || { echo "could not install $playwright_req"; exit 1; }
python scripts/newcomer.py --results "$results/newcomer.json" --shots "$results/newcomer" || failed_suites+=(newcomer)

step "build and install the package (wheel with the prebuilt labextension)"
# A fresh build every time: the wheel build skips the frontend if a built one is already there.
rm -rf infinstor_jupyterlab/labextension
python -m pip install --quiet ".[test]" || { echo "pip install failed"; exit 1; }
jlpm install >/dev/null || { echo "jlpm install failed"; exit 1; }
jupyter server extension list 2>&1 | grep -E "infinstor_jupyterlab.*OK" || { echo "server extension not OK"; exit 1; }
jupyter labextension list 2>&1 | grep -E "infinstor-jupyterlab.*enabled.*OK" || { echo "labextension not OK"; exit 1; }

step "static checks: ruff (lint, format) and mypy (configured in pyproject.toml)"
# ruff and mypy come with the test extra; mypy checks the whole package.
{ ruff check . && ruff format --check . && mypy; } >"$results/static.log" 2>&1 && tail -n 3 "$results/static.log" \
  || { tail -n 60 "$results/static.log"; failed_suites+=(static); }

step "jest"
jlpm jest --ci --json --outputFile="$results/jest.json" || failed_suites+=(jest)

step "kubernetes manifests (kubectl kustomize + kubernetes-validate --strict)"
# kubectl is on the machine image; kubernetes-validate comes with the test extra.
bash scripts/check-kubernetes.sh >"$results/kubernetes.log" 2>&1 && cat "$results/kubernetes.log" \
  || { cat "$results/kubernetes.log"; failed_suites+=(kubernetes); }

step "cloudformation (cfn-lint: deploy/aws)"
# The EC2 target's template and the serverless stack with its DR variant (docs/serverless.md).
python -m pip install --quiet "cfn-lint>=1.0" || { echo "could not install cfn-lint"; exit 1; }
cfn-lint deploy/aws/*.yaml >"$results/cfn-lint.log" 2>&1 && echo "cfn-lint: templates valid" | tee -a "$results/cfn-lint.log" \
  || { cat "$results/cfn-lint.log"; failed_suites+=(cfn-lint); }

step "pytest"
# Shuffled (pytest-randomly), in one fixed order so a CI failure can be replayed: the seed's order
# was run whole on the dev machine. Developers' runs get a new seed each time (printed at the top).
python -m pytest -p no:cacheprovider -p randomly --randomly-seed="${INFINSTOR_TEST_SEED:-3468745233}" \
  --junitxml="$results/pytest.xml" tests || failed_suites+=(pytest)

step "schemathesis (docs/openapi.yaml against a running lab)"
# Deterministic inputs, a fixed number per operation (about 4 minutes here); a throwaway lab.
timeout 900 python scripts/schemathesis-lab.py --junit "$results/schemathesis.xml" >"$results/schemathesis.log" 2>&1 \
  && tail -n 12 "$results/schemathesis.log" \
  || { tail -n 80 "$results/schemathesis.log"; failed_suites+=(schemathesis); }

step "jupyterlab.browser_check"
bash scripts/browser-check.sh >"$results/browser-check.log" 2>&1 && tail -n 3 "$results/browser-check.log" \
  || { tail -n 40 "$results/browser-check.log"; failed_suites+=(browser_check); }

step "galata (Debian chromium)"
(cd ui-tests && jlpm install >/dev/null && \
  PLAYWRIGHT_JSON_OUTPUT_NAME="$results/galata.json" jlpm playwright test --reporter=list,json,html) \
  || failed_suites+=(galata)

step "summary"
python - "$results" "${#failed_suites[@]}" <<'PY'
import json, sys, xml.etree.ElementTree as ET
from pathlib import Path
results = Path(sys.argv[1]); passed = failed = 0
def add(name, p, f):
    global passed, failed
    passed += p; failed += f
    print(f"{name}: {p} passed, {f} failed")
try:
    n = json.loads((results / "newcomer.json").read_text()); add("newcomer", n["passed"], n["failed"])
except Exception: add("newcomer", 0, 1)
try:
    j = json.loads((results / "jest.json").read_text()); add("jest", j["numPassedTests"], j["numFailedTests"] + j.get("numRuntimeErrorTestSuites", 0))
except Exception: add("jest", 0, 1)
try:
    s = ET.parse(results / "pytest.xml").getroot(); s = s if s.tag == "testsuite" else s[0]
    t, f, e, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")); add("pytest", t - f - e - sk, f + e)
except Exception: add("pytest", 0, 1)
static = (results / "static.log").read_text() if (results / "static.log").exists() else ""
add("static", int("Success: no issues found" in static), int("Success: no issues found" not in static))
k8s = (results / "kubernetes.log").read_text() if (results / "kubernetes.log").exists() else ""
add("kubernetes", k8s.count("resources valid"), k8s.count("INVALID") + int("resources valid" not in k8s))
cfn = (results / "cfn-lint.log").read_text() if (results / "cfn-lint.log").exists() else ""
add("cfn-lint", int("templates valid" in cfn), int("templates valid" not in cfn))
try:
    s = ET.parse(results / "schemathesis.xml").getroot(); s = s if s.tag == "testsuite" else s[0]
    t, f, e, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")); add("schemathesis", t - f - e - sk, f + e)
except Exception: add("schemathesis", 0, 1)
log = (results / "browser-check.log").read_text() if (results / "browser-check.log").exists() else ""
add("browser_check", int("browser_check passed" in log), int("browser_check passed" not in log))
try:
    st = json.loads((results / "galata.json").read_text())["stats"]; add("galata", st["expected"] + st.get("flaky", 0), st["unexpected"])
except Exception: add("galata", 0, 1)
print(f"tests: {passed} passed, {failed} failed")
PY
if [ ${#failed_suites[@]} -gt 0 ]; then
  echo "failed suites: ${failed_suites[*]}"
  exit 1
fi
