#!/usr/bin/env bash
# Repeatable end-to-end checks of an offline cluster (context kind-k8slab; K8SLAB_CNI=flannel,
# flannel+kube-router or cilium: that second cluster). Every probe is bounded (count and time) and talks only to this
# cluster's containers (pod IPs, node IPs on the internal docker network, the MetalLB/Traefik address).
# Exit status 0 = all checks passed; a check a cluster's add-ons cannot answer is SKIP with the reason.
# Usage: [K8SLAB_CNI=...] smoke-test.sh [--keep]   (--keep leaves namespace k8slab-smoke for inspection)
source "$(dirname "$0")/lib.sh"
set +e  # every check reports and the script carries on
CNI="${K8SLAB_CNI:-kube-router}"
select_cni "$CNI" || die "K8SLAB_CNI=$CNI: the offline clusters are $OFFLINE_CNIS"
CONTEXT="kind-$CLUSTER" NS=k8slab-smoke
# second clusters run the core add-ons only (no MetalLB, Traefik, Gateway API); Flannel alone enforces no policy
FULL=$([ "$CNI" = kube-router ] && echo 1 || echo 0)
ENFORCES=$([ "$CNI" = flannel ] && echo 0 || echo 1)
KUBECTL="$BIN_DIR/kubectl"; [ -x "$KUBECTL" ] || KUBECTL=kubectl
k() { "$KUBECTL" --context "$CONTEXT" --request-timeout=20s "$@"; }
kx() { local pod="$1"; shift; timeout 20 "$KUBECTL" --context "$CONTEXT" -n "$NS" exec "$pod" -- "$@"; }
PASS=0 FAIL=0 SKIPPED=0 RESULTS=()
ok()   { PASS=$((PASS+1)); RESULTS+=("PASS  $*"); printf '  \033[32mPASS\033[0m %s\n' "$*"; }
skip() { SKIPPED=$((SKIPPED+1)); RESULTS+=("SKIP  $*"); printf '  \033[33mSKIP\033[0m %s\n' "$*"; }
bad()  { FAIL=$((FAIL+1)); RESULTS+=("FAIL  $*"); printf '  \033[31mFAIL\033[0m %s\n' "$*"; }
# retry N CMD...: up to N attempts, 2 s apart
retry() { local n="$1"; shift; local i; for i in $(seq 1 "$n"); do "$@" && return 0; sleep 2; done; return 1; }
hcurl() { curl -s --max-time 4 "$@"; }    # from the host

step "cluster"
nready="$(k get nodes --no-headers 2>/dev/null | awk '$2=="Ready"' | wc -l)"
[ "$nready" -eq 3 ] && ok "kubectl get nodes: 3 Ready" || bad "kubectl get nodes: $nready Ready (want 3)"

step "test pods (namespace $NS)"
k delete namespace "$NS" --ignore-not-found --wait=true --timeout=60s >/dev/null
k create namespace "$NS" >/dev/null
pod() {  # pod NAME ROLE NODE
  cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: $NS, labels: {app: smoke, role: $2}}
spec:
  nodeSelector: {kubernetes.io/hostname: $3}
  terminationGracePeriodSeconds: 0
  containers:
    - name: agnhost
      image: $AGNHOST_IMAGE_OFFLINE
      imagePullPolicy: IfNotPresent
      args: [netexec, --http-port=8080]
      ports: [{containerPort: 8080}]
      readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 2}
---
YAML
}
{ pod server server "$CLUSTER-worker"; pod client client "$CLUSTER-worker2"; pod other other "$CLUSTER-worker2"
  cat <<YAML
apiVersion: v1
kind: Service
metadata: {name: server, namespace: $NS}
spec: {selector: {role: server}, ports: [{port: 8080, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: server-np, namespace: $NS}
spec: {type: NodePort, selector: {role: server}, ports: [{port: 8080, targetPort: 8080}]}
YAML
  [ "$FULL" = 0 ] || cat <<YAML
---
apiVersion: v1
kind: Service
metadata: {name: server-lb, namespace: $NS}
spec: {type: LoadBalancer, selector: {role: server}, ports: [{port: 8080, targetPort: 8080}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: server, namespace: $NS}
spec:
  ingressClassName: traefik
  rules:
    - host: smoke.k8slab.test
      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: server, port: {number: 8080}}}}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: server, namespace: $NS}
spec:
  parentRefs: [{name: traefik-gateway, namespace: traefik}]
  hostnames: [gw.k8slab.test]
  rules: [{backendRefs: [{name: server, port: 8080}]}]
YAML
} | k apply -f - >/dev/null
if k -n "$NS" wait --for=condition=Ready pod --all --timeout=120s >/dev/null; then ok "agnhost pods Ready (server on worker, client+other on worker2)"
else bad "agnhost pods not Ready"; k -n "$NS" get pods -o wide; fi
ip_of() { k -n "$NS" get pod "$1" -o jsonpath='{.status.podIP}'; }
SIP="$(ip_of server)" CIP="$(ip_of client)" OIP="$(ip_of other)"

step "pod to pod across nodes"
seen="$(kx client curl -s --max-time 4 "http://$SIP:8080/clientip" || true)"
[ "${seen%:*}" = "$CIP" ] && ok "client($CIP, worker2) -> server($SIP, worker): server sees client IP $seen (no NAT)" \
  || bad "client -> server by pod IP: server saw '${seen}' (want $CIP:port)"
kx client /agnhost connect --timeout=3s "$SIP:8080" && ok "agnhost connect client -> server:8080" || bad "agnhost connect client -> server:8080"

step "data plane ($CNI)"
mtu="$(kx client cat /sys/class/net/eth0/mtu | tr -d '\r')"
if [ "$CNI" = kube-router ]; then
  [ "$mtu" = 1500 ] && ok "pod eth0 MTU 1500: routed, no encapsulation" || bad "pod eth0 MTU '$mtu' (want 1500)"
  r="$(docker exec "$CLUSTER-worker2" ip route show "$(k get node "$CLUSTER-worker" -o jsonpath='{.spec.podCIDR}')")"
  [[ "$r" == *"dev eth0"* ]] && ok "route to the worker's podCIDR via its node IP: $r" || bad "route to the worker's podCIDR: '$r'"
elif [ "$CNI" = cilium ]; then
  # Cilium leaves eth0 at the node's MTU and puts VXLAN's 50 bytes on the pod's route instead
  rmtu="$(kx client ip route get "$SIP" | sed -n 's/.*\bmtu \([0-9]*\).*/\1/p' | head -1)"
  [ "$mtu" = 1500 ] && [ "$rmtu" = 1450 ] && ok "pod eth0 MTU 1500, route to the other node's pod mtu 1450: VXLAN's 50 bytes on the route" \
    || bad "pod eth0 MTU '$mtu', route mtu '$rmtu' (want 1500 and 1450)"
  mtu="${rmtu:-$mtu}"
  vx="$(docker exec "$CLUSTER-worker2" ip -d link show cilium_vxlan 2>&1)"
  [[ "$vx" == *"vxlan external"* || "$vx" == *"vxlan id"* ]] && ok "cilium_vxlan is a VXLAN device (flow-based: Cilium's BPF picks the tunnel per packet)" \
    || bad "cilium_vxlan: '$vx'"
  agent="$(k -n kube-system get pod -l k8s-app=cilium --field-selector "spec.nodeName=$CLUSTER-worker2" -o name | head -1)"
  st="$(timeout 30 "$KUBECTL" --context "$CONTEXT" -n kube-system exec "${agent#pod/}" -c cilium-agent -- cilium-dbg status --brief 2>&1)"
  [ "$st" = OK ] && ok "cilium-dbg status --brief on $CLUSTER-worker2: OK" || bad "cilium-dbg status: '$st'"
  eps="$(timeout 30 "$KUBECTL" --context "$CONTEXT" -n kube-system exec "${agent#pod/}" -c cilium-agent -- cilium-dbg bpf endpoint list 2>/dev/null | grep -c ':' || true)"
  [ "${eps:-0}" -ge 2 ] && ok "eBPF endpoint map on $CLUSTER-worker2: $eps entries (cilium-dbg bpf endpoint list)" \
    || bad "eBPF endpoint map on $CLUSTER-worker2: '${eps}' entries"
else
  [ "$mtu" = 1450 ] && ok "pod eth0 MTU 1450: VXLAN's 50-byte header" || bad "pod eth0 MTU '$mtu' (want 1450, VXLAN)"
  vx="$(docker exec "$CLUSTER-worker2" ip -d link show flannel.1 2>&1)"
  [[ "$vx" == *"vxlan id 1"* ]] && ok "flannel.1 is a VXLAN device (vxlan id 1, dstport 8472)" || bad "flannel.1: '$vx'"
fi
# Lab 02's don't-fragment pings: the largest payload that crosses nodes is the path's MTU (eth0's, or the route's on
# Cilium) less 28 (IP + ICMP headers).
k -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: pinger, namespace: $NS, labels: {app: smoke, role: pinger}}
spec:
  nodeSelector: {kubernetes.io/hostname: $CLUSTER-worker2}
  terminationGracePeriodSeconds: 0
  containers: [{name: ping, image: $NETPROBE_IMAGE_OFFLINE, imagePullPolicy: IfNotPresent, command: [sleep, infinity]}]
YAML
if k -n "$NS" wait --for=condition=Ready pod/pinger --timeout=60s >/dev/null 2>&1 && [[ "$mtu" =~ ^[0-9]+$ ]]; then
  edge=$((mtu - 28))
  if kx pinger ping -M do -c 2 -i 0.2 -W 1 -s "$edge" "$SIP" >/dev/null 2>&1 \
     && ! kx pinger ping -M do -c 2 -i 0.2 -W 1 -s "$((edge + 1))" "$SIP" >/dev/null 2>&1; then
    ok "don't-fragment ping worker2 -> worker: $edge bytes of payload get through, $((edge + 1)) do not"
  else bad "don't-fragment ping: the edge is not at $edge bytes (MTU $mtu)"; fi
else bad "pinger pod ($NETPROBE_IMAGE_OFFLINE) not Ready, or no pod MTU read ('$mtu')"; fi

step "Services"
dns_ok() { [ "$(kx client curl -s --max-time 4 http://server.$NS.svc.cluster.local:8080/hostname)" = server ]; }
retry 10 dns_ok && ok "ClusterIP by DNS name server.$NS.svc.cluster.local -> server" || bad "ClusterIP by DNS name"
kx client nslookup "server.$NS.svc.cluster.local" >/dev/null && ok "nslookup in the probe image" || bad "nslookup in the probe image"
NP="$(k -n "$NS" get svc server-np -o jsonpath='{.spec.ports[0].nodePort}')"
for node in "$CLUSTER-control-plane" "$CLUSTER-worker" "$CLUSTER-worker2"; do
  nip="$(docker inspect -f "{{(index .NetworkSettings.Networks \"$K8SLAB_NETWORK\").IPAddress}}" "$node")"
  np_ok() { [ "$(hcurl "http://$nip:$NP/hostname")" = server ]; }
  retry 5 np_ok && ok "NodePort from the host: $node $nip:$NP -> server" || bad "NodePort from the host: $node $nip:$NP"
done
if [ "$FULL" = 0 ]; then
  skip "LoadBalancer, Ingress and Gateway API: not probed, $CLUSTER runs the core add-ons only (no MetalLB, no Traefik)"
else
lbip() { k -n "$NS" get svc server-lb -o jsonpath='{.status.loadBalancer.ingress[0].ip}'; }
retry 15 test -n "$(lbip)"; LB="$(lbip)"
lb_ok() { [ "$(hcurl "http://$LB:8080/hostname")" = server ]; }
[ -n "$LB" ] && retry 10 lb_ok && ok "MetalLB LoadBalancer from the host: $LB:8080 -> server" || bad "MetalLB LoadBalancer from the host ('$LB')"
TR="$(k -n traefik get svc traefik -o jsonpath='{.status.loadBalancer.ingress[0].ip}')"
ing_ok() { [ "$(hcurl --resolve "smoke.k8slab.test:80:$TR" http://smoke.k8slab.test/hostname)" = server ]; }
[ -n "$TR" ] && retry 15 ing_ok && ok "Traefik Ingress host rule from the host: smoke.k8slab.test via $TR -> server" \
  || bad "Traefik Ingress host rule from the host (traefik LB '$TR')"
nohost="$(hcurl -o /dev/null -w '%{http_code}' --resolve "other.k8slab.test:80:$TR" http://other.k8slab.test/hostname || true)"
[ "$nohost" = 404 ] && ok "Traefik: unknown host -> 404" || bad "Traefik: unknown host gave '$nohost' (want 404)"
gw_ok() { [ "$(hcurl --resolve "gw.k8slab.test:80:$TR" http://gw.k8slab.test/hostname)" = server ]; }
[ -n "$TR" ] && retry 15 gw_ok && ok "Traefik Gateway API HTTPRoute from the host: gw.k8slab.test -> server" \
  || bad "Traefik Gateway API HTTPRoute (gw.k8slab.test via '$TR')"
fi

step "NetworkPolicy ($([ "$ENFORCES" = 1 ] && echo "enforced by $([ "$CNI" = cilium ] && echo Cilium || echo kube-router)" || echo "Flannel: no engine"))"
can() { kx "$1" /agnhost connect --timeout=2s "$2:8080" >/dev/null 2>&1; }
can client "$SIP" && can other "$SIP" && can server "$CIP" && can other "$CIP" && ok "before policy: client->server, other->server, server->client, other->client all connect" \
  || bad "before policy: some connection already fails"
k -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: $NS}
spec: {podSelector: {}, policyTypes: [Ingress]}
YAML
blocked() { ! can "$1" "$2"; }
if [ "$ENFORCES" = 0 ]; then
  # the seed's table says Flannel does not support NetworkPolicy: the API server stores the object, nobody enforces it
  sleep 6
  can client "$SIP" && ok "default-deny NOT enforced, as expected: client->server still connects 6 s later (Flannel has no policy engine)" \
    || bad "default-deny: client->server blocked on Flannel alone (what enforces it?)"
  k -n "$NS" delete networkpolicy --all >/dev/null
else
retry 10 blocked client "$SIP" && ok "default-deny: client->server blocked" || bad "default-deny: client->server still connects"
k -n "$NS" apply -f - >/dev/null <<YAML
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-to-server, namespace: $NS}
spec:
  podSelector: {matchLabels: {role: server}}
  policyTypes: [Ingress]
  ingress: [{from: [{podSelector: {matchLabels: {role: client}}}], ports: [{port: 8080, protocol: TCP}]}]
YAML
retry 10 can client "$SIP" && ok "allow rule: client->server restored" || bad "allow rule: client->server still blocked"
blocked other "$SIP" && ok "allow rule: other->server still blocked" || bad "allow rule: other->server connects"
blocked server "$CIP" && ok "allow rule: server->client (reverse) still blocked" || bad "allow rule: server->client connects"
blocked other "$CIP" && ok "allow rule: other->client (same node) blocked" || bad "allow rule: other->client (same node) connects"
k -n "$NS" delete networkpolicy --all >/dev/null
retry 10 can other "$SIP" && ok "policies removed: other->server connects again" || bad "policies removed: other->server still blocked"
fi

step "images"
pulls="$(k get events -A --field-selector reason=Pulling --no-headers 2>/dev/null | wc -l)"
pullerr="$(k get events -A --no-headers 2>/dev/null | grep -c -E 'ErrImagePull|ImagePullBackOff|Failed to pull' || true)"
[ "$pulls" -eq 0 ] && [ "$pullerr" -eq 0 ] && ok "no image pull attempts in events (Pulling: 0, pull errors: 0)" \
  || bad "image pull events: Pulling=$pulls errors=$pullerr"

[ "${1:-}" = "--keep" ] || k delete namespace "$NS" --wait=false >/dev/null
echo; printf '%s\n' "${RESULTS[@]}"
echo "smoke test ($CLUSTER): $PASS passed, $FAIL failed, $SKIPPED skipped"
[ "$FAIL" -eq 0 ]
