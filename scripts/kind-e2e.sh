#!/usr/bin/env bash
# Conveyor on a real cluster: build the image, create a kind cluster, load the image,
# `helm install` the chart (with its evaluation Redis and PostgreSQL), apply the examples and
# wait until every Execution is Succeeded; then `helm upgrade` (the CRD hook runs) and
# `helm uninstall` (the finalizer hook runs) and check nothing is left stuck.
#
# Needs docker, kind, helm (v3.8+) and kubectl. Nothing here runs on machines without a
# container engine; tests/chart/test_kind_script.py checks what can be checked without one
# (this script's shell, the values it installs with, the manifests it applies, its plan).
#
#   scripts/kind-e2e.sh                  the whole run; deletes the cluster at the end
#   KEEP_CLUSTER=1 scripts/kind-e2e.sh   keep the cluster for a look around
#   scripts/kind-e2e.sh --dry-run        print the commands instead of running them
#   scripts/kind-e2e.sh --print-manifests print the httpbin and examples it applies
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER="${CLUSTER:-conveyor-e2e}"
IMAGE="conveyor:e2e"                      # = image.repository:image.tag of the values file
VALUES="$ROOT/charts/conveyor/ci/kind-values.yaml"
RELEASE_NS="conveyor-system"
RUN_NS="conveyor-e2e"
HTTPBIN_IMAGE="ghcr.io/mccutchen/go-httpbin:v2.15.0"
TIMEOUT="${TIMEOUT:-300s}"
DRY_RUN=0

run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '+ %s\n' "$*"
  else
    "$@"
  fi
}

say() { printf '\n==> %s\n' "$*" >&2; }

# The examples call http://httpbin.conveyor.test (the sandbox routes it); in the cluster an
# httpbin Service in the run namespace answers instead.
examples() {
  local file
  for file in "$ROOT"/examples/*.yaml; do
    printf -- '---\n'
    sed "s#http://httpbin.conveyor.test#http://httpbin.$RUN_NS.svc.cluster.local#g" "$file"
  done
}

httpbin() {
  cat <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: httpbin, namespace: $RUN_NS}
spec:
  replicas: 1
  selector: {matchLabels: {app: httpbin}}
  template:
    metadata: {labels: {app: httpbin}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: httpbin
          image: $HTTPBIN_IMAGE
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /status/200, port: http}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
---
apiVersion: v1
kind: Service
metadata: {name: httpbin, namespace: $RUN_NS}
spec:
  selector: {app: httpbin}
  ports: [{name: http, port: 80, targetPort: http}]
YAML
}

cleanup() {
  if [[ "${KEEP_CLUSTER:-0}" != 1 && "$DRY_RUN" != 1 ]]; then
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
}

main() {
  case "${1:-}" in
    --dry-run) DRY_RUN=1 ;;
    --print-manifests) httpbin; examples; return ;;
    "") ;;
    *) echo "usage: $0 [--dry-run | --print-manifests]" >&2; return 2 ;;
  esac
  if [[ "$DRY_RUN" != 1 ]]; then
    local tool
    for tool in docker kind helm kubectl; do
      command -v "$tool" >/dev/null || { echo "kind-e2e: $tool is not installed" >&2; return 1; }
    done
  fi
  trap cleanup EXIT

  say "build $IMAGE"
  run docker build -f "$ROOT/Containerfile" -t "$IMAGE" "$ROOT"

  say "create kind cluster $CLUSTER"
  run kind create cluster --name "$CLUSTER" --wait 120s
  run kind load docker-image "$IMAGE" --name "$CLUSTER"
  run kubectl config use-context "kind-$CLUSTER"

  say "install the chart"
  run helm install conveyor "$ROOT/charts/conveyor" --namespace "$RELEASE_NS" \
    --create-namespace --values "$VALUES" --wait --timeout "$TIMEOUT"
  run kubectl -n "$RELEASE_NS" rollout status deployment/conveyor-operator --timeout "$TIMEOUT"
  run kubectl wait --for=condition=Ready workerpool/default --timeout "$TIMEOUT"

  say "run the examples"
  run kubectl create namespace "$RUN_NS"
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '+ kubectl apply -f - (httpbin)\n+ kubectl apply -n %s -f - (examples)\n' "$RUN_NS"
  else
    httpbin | kubectl apply -f -
    kubectl -n "$RUN_NS" rollout status deployment/httpbin --timeout "$TIMEOUT"
    examples | kubectl apply -n "$RUN_NS" -f -
  fi
  run kubectl -n "$RUN_NS" wait --for=condition=Ready execution --all --timeout "$TIMEOUT"
  run kubectl get conveyor --all-namespaces

  say "upgrade (the pre-upgrade hook applies the CRDs)"
  run helm upgrade conveyor "$ROOT/charts/conveyor" --namespace "$RELEASE_NS" \
    --values "$VALUES" --wait --timeout "$TIMEOUT"
  run kubectl -n "$RUN_NS" wait --for=condition=Ready execution --all --timeout "$TIMEOUT"

  say "uninstall (the pre-delete hook releases finalizers); nothing may hang"
  run helm uninstall conveyor --namespace "$RELEASE_NS" --wait --timeout "$TIMEOUT"
  run kubectl delete namespace "$RUN_NS" --wait --timeout 60s
  run kubectl get crd workflows.conveyor.dev executions.conveyor.dev workerpools.conveyor.dev

  say "kind e2e passed"
}

main "$@"
