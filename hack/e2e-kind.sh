#!/usr/bin/env bash
# `make e2e-kind`: the e2e suite against a kind cluster running all of real Linkerd, for people
# with Docker (it cannot run on the project's own machines: no Docker, no access to Linkerd's
# chart repository). Step by step:
#
#   1. create the kind cluster $CLUSTER (hack/kind/cluster.yaml)
#   2. install the Gateway API CRDs ($GATEWAY_API_VERSION, standard channel)
#   3. install Linkerd from its Helm charts: linkerd-crds, linkerd-control-plane (with a trust
#      anchor and an issuer certificate made here with openssl), linkerd-viz (its Prometheus is
#      what canary queries) and linkerd-smi (TrafficSplit)
#   4. build the controller image (`make image`) and `kind load` it
#   5. deploy emojivoto (examples/emojivoto, with vote-bot as its real load) and install our
#      chart (release canary-kind, watching only the emojivoto namespace), then release web
#      through it and wait until the in-cluster controller promotes it
#   6. run the e2e tests this script selects (`hack/e2e-kind.sh selection` prints them) with the
#      e2e environment pointing at the cluster: CANARY_E2E_KUBECONFIG, CANARY_E2E_PROMETHEUS_URL
#      (a port-forward of linkerd-viz's Prometheus); the tests deploy podinfo with a real load
#      generator (fortio) in their own namespaces and run their own controllers as canary's
#      ServiceAccount. Releases that are faulty only through the emulator's annotations are
#      deselected (`-m "not emulated"`).
#
# Needs: docker, kind, kubectl, helm, openssl, make and the project's virtualenv (`make venv`).
# KEEP=1 keeps the cluster afterwards; otherwise it is deleted.
set -euo pipefail

CLUSTER=${CLUSTER:-canary-e2e}
GATEWAY_API_VERSION=${GATEWAY_API_VERSION:-v1.6.3}
LINKERD_REPO=${LINKERD_REPO:-https://helm.linkerd.io/edge}
LINKERD_SMI_REPO=${LINKERD_SMI_REPO:-https://linkerd.github.io/linkerd-smi}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-19090}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
WORK=$REPO/.dev/e2e-kind
KUBECONFIG_FILE=$WORK/kubeconfig
E2E_FILE=tests/integration/e2e/test_releases_are_promoted_or_rolled_back.py
E2E_MARKERS="integration and not emulated"

selection() {
  printf '%s\n' "$E2E_FILE" -m "$E2E_MARKERS"
}

need() {
  local missing=()
  for tool in docker kind kubectl helm openssl make; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    echo "e2e-kind needs ${missing[*]} on PATH" >&2
    exit 1
  fi
  [[ -x $REPO/.venv/bin/pytest ]] || { echo "run 'make venv' first" >&2; exit 1; }
}

kc() {
  kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"
}

certificates() {
  # Linkerd's identity: a trust anchor and an issuer it signs (ECDSA P-256, as Linkerd expects).
  local dir=$WORK/certs
  mkdir -p "$dir"
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 365 -subj "/CN=root.linkerd.cluster.local" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$dir/issuer.key" -out "$dir/issuer.csr" -subj "/CN=identity.linkerd.cluster.local"
  openssl x509 -req -in "$dir/issuer.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -out "$dir/issuer.crt" -days 365 \
    -extfile <(printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n')
}

linkerd() {
  helm repo add linkerd-edge "$LINKERD_REPO" --force-update >/dev/null
  helm repo add linkerd-smi "$LINKERD_SMI_REPO" --force-update >/dev/null
  helm --kubeconfig "$KUBECONFIG_FILE" upgrade --install linkerd-crds linkerd-edge/linkerd-crds \
    -n linkerd --create-namespace --set installGatewayAPI=false --wait
  certificates
  helm --kubeconfig "$KUBECONFIG_FILE" upgrade --install linkerd-control-plane \
    linkerd-edge/linkerd-control-plane -n linkerd \
    --set-file identityTrustAnchorsPEM="$WORK/certs/ca.crt" \
    --set-file identity.issuer.tls.crtPEM="$WORK/certs/issuer.crt" \
    --set-file identity.issuer.tls.keyPEM="$WORK/certs/issuer.key" --wait --timeout 10m
  helm --kubeconfig "$KUBECONFIG_FILE" upgrade --install linkerd-viz linkerd-edge/linkerd-viz \
    -n linkerd-viz --create-namespace --wait --timeout 10m
  helm --kubeconfig "$KUBECONFIG_FILE" upgrade --install linkerd-smi linkerd-smi/linkerd-smi \
    -n linkerd-smi --create-namespace --wait
}

image() {
  make -C "$REPO" image
  kind load image-archive "$REPO/.dev/image/canary.oci.tar" --name "$CLUSTER"
}

emojivoto() {
  local version
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/pyproject.toml")
  kc apply -f "$REPO/examples/emojivoto/namespace.yaml"
  kc apply -n emojivoto -f "$REPO/examples/emojivoto/emojivoto.yaml"
  kc -n emojivoto rollout status deploy/web deploy/voting deploy/emoji --timeout 5m
  helm --kubeconfig "$KUBECONFIG_FILE" upgrade --install canary-kind "$REPO/charts/canary" \
    -n canary-kind --create-namespace --set image.repository=localhost/canary \
    --set image.tag="$version" --set image.pullPolicy=Never \
    --set 'watchNamespaces={emojivoto}' --wait
  kc apply -n emojivoto -f "$REPO/examples/emojivoto/policies.yaml" \
    -f "$REPO/examples/emojivoto/release-web.yaml"
  kc -n emojivoto wait rollout/web-2 --for=jsonpath='{.status.phase}'=Succeeded --timeout 10m
}

run_tests() {
  kc -n linkerd-viz port-forward svc/prometheus "$PROMETHEUS_PORT:9090" >"$WORK/port-forward.log" 2>&1 &
  local forward=$!
  trap 'kill "$forward" 2>/dev/null || true' RETURN
  local args
  mapfile -t args < <(selection)
  (cd "$REPO" && CANARY_E2E_KUBECONFIG=$KUBECONFIG_FILE \
    CANARY_E2E_PROMETHEUS_URL=http://127.0.0.1:$PROMETHEUS_PORT \
    .venv/bin/pytest -q -p no:cacheprovider "${args[@]}")
}

main() {
  need
  mkdir -p "$WORK"
  kind create cluster --name "$CLUSTER" --config "$HERE/kind/cluster.yaml" \
    --kubeconfig "$KUBECONFIG_FILE"
  if [[ ${KEEP:-0} != 1 ]]; then
    trap 'kind delete cluster --name "$CLUSTER"' EXIT
  fi
  kc apply --server-side -f \
    "https://github.com/kubernetes-sigs/gateway-api/releases/download/$GATEWAY_API_VERSION/standard-install.yaml"
  linkerd
  image
  emojivoto
  run_tests
}

case ${1:-run} in
  selection) selection ;;
  run) main ;;
  *) echo "usage: $0 [run|selection]" >&2; exit 2 ;;
esac
