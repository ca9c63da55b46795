#!/usr/bin/env bash
# Renders every Kustomize overlay of deploy/kubernetes (kubectl kustomize, offline) and validates
# the result against the Kubernetes schemas (kubernetes-validate --strict: unknown fields are
# errors). Needs kubectl and kubernetes-validate (the package's `test` extra).
set -euo pipefail
cd "$(dirname "$0")/.."
version="${KUBERNETES_VERSION:-1.32.0}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
status=0
for overlay in deploy/kubernetes/overlays/*/; do
  name="$(basename "$overlay")"
  rendered="$out/$name.yaml"
  kubectl kustomize "$overlay" > "$rendered"
  count="$(grep -c '^kind:' "$rendered")"
  if kubernetes-validate --strict --kubernetes-version "$version" --quiet "$rendered"; then
    echo "kubernetes: overlay $name: $count resources valid (Kubernetes $version, strict)"
  else
    echo "kubernetes: overlay $name: INVALID (see above)"
    status=1
  fi
done
exit "$status"
