#!/bin/sh
# bootstrap-tls.sh: give the kubepulse adapter a serving certificate and put the CA that
# signed it into the APIServices' caBundle, so that kube-apiserver verifies the adapter
# as <service>.<namespace>.svc (never insecureSkipTLSVerify).
#
# Two ways, chosen automatically (MODE=auto):
#
#   cert-manager  when its CRDs are installed: a self-signed Issuer makes a CA, a CA
#                 Issuer signs the serving Certificate into the Secret, and cainjector
#                 fills every APIService's caBundle from the
#                 cert-manager.io/inject-ca-from annotation this script adds. Renewal is
#                 cert-manager's; the adapter re-reads the files when they change.
#   openssl       otherwise: a new CA and a serving certificate signed by it (ECDSA P-256)
#                 are made in a temporary directory, stored as the kubernetes.io/tls Secret
#                 (ca.crt, tls.crt, tls.key) and the CA is patched into every APIService's
#                 caBundle. The CA's key is thrown away, so nothing else can be signed with
#                 it. Run the script again to renew: a certificate that is still valid for
#                 RENEW_BEFORE_DAYS and names the Service is kept (FORCE=1 replaces it).
#
# Needs: POSIX sh, kubectl (with rights to create Secrets in NAMESPACE and to patch
# APIServices) and, for the openssl way, openssl 1.1.1 or newer. Apply the manifests of
# this directory first (the namespace and the APIServices must exist).
#
# Settings (environment variables):
#   NAMESPACE          the adapter's namespace                      (kubepulse)
#   SERVICE            the adapter's Service                        (kubepulse-adapter)
#   SECRET             the TLS Secret the Deployment mounts         (kubepulse-adapter-tls)
#   CLUSTER_DOMAIN     the cluster's DNS domain                     (cluster.local)
#   APISERVICES        the APIServices to fill, space-separated     (the four of 05-apiservices.yaml)
#   MODE               auto, cert-manager or openssl                (auto)
#   DAYS               validity of a generated serving certificate  (365)
#   RENEW_BEFORE_DAYS  replace a generated certificate this close to expiry (30)
#   FORCE              1: replace a still-valid generated certificate (0)
#   KUBECTL            the kubectl command                          (kubectl)
#   OPENSSL            the openssl command                          (openssl)
#
# Exit status: 0 done, 1 something failed (the message says what to do), 2 bad usage.
set -eu

NAMESPACE=${NAMESPACE:-kubepulse}
SERVICE=${SERVICE:-kubepulse-adapter}
SECRET=${SECRET:-kubepulse-adapter-tls}
CLUSTER_DOMAIN=${CLUSTER_DOMAIN:-cluster.local}
APISERVICES=${APISERVICES:-v1beta2.custom.metrics.k8s.io v1beta1.custom.metrics.k8s.io v1beta1.external.metrics.k8s.io v1alpha1.analysis.kubepulse.io}
MODE=${MODE:-auto}
DAYS=${DAYS:-365}
RENEW_BEFORE_DAYS=${RENEW_BEFORE_DAYS:-30}
FORCE=${FORCE:-0}
KUBECTL=${KUBECTL:-kubectl}
OPENSSL=${OPENSSL:-openssl}

CA_ISSUER="${SERVICE}-ca"
SELF_SIGNED_ISSUER="${SERVICE}-selfsigned"
CA_SECRET="${SERVICE}-ca"

say() { printf 'bootstrap-tls: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

usage() {
    sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") ;;
    *) say "unknown argument '$1'; settings are environment variables (see --help)"; exit 2 ;;
esac

case "$MODE" in
    auto | cert-manager | openssl) ;;
    *) say "MODE must be auto, cert-manager or openssl (got '$MODE')"; exit 2 ;;
esac
case "$DAYS$RENEW_BEFORE_DAYS" in
    *[!0-9]*) say "DAYS and RENEW_BEFORE_DAYS must be whole numbers of days"; exit 2 ;;
esac

kubectl_() { $KUBECTL "$@"; }

command -v "${KUBECTL%% *}" >/dev/null 2>&1 ||
    die "kubectl not found ('$KUBECTL'); install it or set KUBECTL=/path/to/kubectl"
kubectl_ get namespace "$NAMESPACE" >/dev/null 2>&1 ||
    die "namespace '$NAMESPACE' not found (or the cluster is unreachable); run 'kubectl apply -f apiservice/00-namespace.yaml' or set NAMESPACE"

missing=""
for apiservice in $APISERVICES; do
    kubectl_ get apiservice "$apiservice" >/dev/null 2>&1 || missing="$missing $apiservice"
done
[ -z "$missing" ] ||
    die "APIService(s)${missing} not found; run 'kubectl apply -f apiservice/05-apiservices.yaml' first, or set APISERVICES to the ones you registered"

DNS_SHORT="$SERVICE.$NAMESPACE.svc"
DNS_FULL="$SERVICE.$NAMESPACE.svc.$CLUSTER_DOMAIN"

has_cert_manager() {
    kubectl_ get crd certificates.cert-manager.io issuers.cert-manager.io >/dev/null 2>&1
}

# ------------------------------------------------------------------ cert-manager

with_cert_manager() {
    say "cert-manager found: issuing $NAMESPACE/$SECRET through Issuer $CA_ISSUER"
    kubectl_ apply -f - <<EOF
apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: $SELF_SIGNED_ISSUER
  namespace: $NAMESPACE
spec:
  selfSigned: {}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: $CA_SECRET
  namespace: $NAMESPACE
spec:
  isCA: true
  commonName: $SERVICE-ca
  secretName: $CA_SECRET
  duration: 87600h
  privateKey: {algorithm: ECDSA, size: 256}
  issuerRef: {name: $SELF_SIGNED_ISSUER, kind: Issuer}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata:
  name: $CA_ISSUER
  namespace: $NAMESPACE
spec:
  ca: {secretName: $CA_SECRET}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: $SECRET
  namespace: $NAMESPACE
spec:
  secretName: $SECRET
  commonName: $DNS_SHORT
  dnsNames: [$SERVICE, $SERVICE.$NAMESPACE, $DNS_SHORT, $DNS_FULL]
  duration: $((DAYS * 24))h
  renewBefore: $((RENEW_BEFORE_DAYS * 24))h
  usages: [server auth, digital signature]
  privateKey: {algorithm: ECDSA, size: 256, rotationPolicy: Always}
  issuerRef: {name: $CA_ISSUER, kind: Issuer}
EOF
    for apiservice in $APISERVICES; do
        kubectl_ annotate --overwrite apiservice "$apiservice" \
            "cert-manager.io/inject-ca-from=$NAMESPACE/$SECRET" >/dev/null
    done
    kubectl_ -n "$NAMESPACE" wait --for=condition=Ready "certificate/$SECRET" --timeout=180s >/dev/null ||
        die "Certificate $NAMESPACE/$SECRET is not Ready after 3 minutes; see 'kubectl -n $NAMESPACE describe certificate $SECRET' and cert-manager's logs"
    say "Certificate $NAMESPACE/$SECRET is Ready; cainjector fills the caBundle of:$(printf ' %s' $APISERVICES)"
}

# ------------------------------------------------------------------ openssl

WORK=""
cleanup() { [ -z "$WORK" ] || rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

secret_field() {  # secret_field KEY: the decoded value of the Secret's data[KEY], or nothing
    escaped=$(printf '%s' "$1" | sed 's/\./\\./g')
    kubectl_ -n "$NAMESPACE" get secret "$SECRET" -o "jsonpath={.data.$escaped}" 2>/dev/null |
        $OPENSSL base64 -d -A 2>/dev/null || true
}

existing_pair_usable() {  # the Secret holds a pair we can keep: same CA, right names, not expiring
    [ "$FORCE" = 1 ] && return 1
    secret_field ca.crt >"$WORK/old-ca.crt"
    secret_field tls.crt >"$WORK/old-tls.crt"
    [ -s "$WORK/old-ca.crt" ] && [ -s "$WORK/old-tls.crt" ] || return 1
    $OPENSSL x509 -noout -checkend $((RENEW_BEFORE_DAYS * 86400)) -in "$WORK/old-tls.crt" >/dev/null 2>&1 || return 1
    $OPENSSL verify -CAfile "$WORK/old-ca.crt" -purpose sslserver -verify_hostname "$DNS_SHORT" \
        "$WORK/old-tls.crt" >/dev/null 2>&1
}

generate_pair() {
    $OPENSSL req -x509 -new -nodes -sha256 -days $((DAYS + 3650)) \
        -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$WORK/ca.key" -out "$WORK/ca.crt" \
        -subj "/CN=$SERVICE-ca" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>"$WORK/openssl.log" ||
        die "openssl could not create the CA: $(cat "$WORK/openssl.log")"
    $OPENSSL req -new -nodes -sha256 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
        -keyout "$WORK/tls.key" -out "$WORK/tls.csr" -subj "/CN=$DNS_SHORT" 2>"$WORK/openssl.log" ||
        die "openssl could not create the serving key: $(cat "$WORK/openssl.log")"
    cat >"$WORK/serving.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:$SERVICE,DNS:$SERVICE.$NAMESPACE,DNS:$DNS_SHORT,DNS:$DNS_FULL
EOF
    serial=0x$($OPENSSL rand -hex 16)
    $OPENSSL x509 -req -sha256 -days "$DAYS" -in "$WORK/tls.csr" \
        -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -set_serial "$serial" \
        -extfile "$WORK/serving.ext" -out "$WORK/tls.crt" 2>"$WORK/openssl.log" ||
        die "openssl could not sign the serving certificate: $(cat "$WORK/openssl.log")"
    rm -f "$WORK/ca.key" "$WORK/tls.csr"
    $OPENSSL verify -CAfile "$WORK/ca.crt" -purpose sslserver -verify_hostname "$DNS_SHORT" \
        "$WORK/tls.crt" >/dev/null ||
        die "the generated certificate does not verify against its CA; check the openssl version (1.1.1 or newer)"
    kubectl_ -n "$NAMESPACE" create secret generic "$SECRET" --type=kubernetes.io/tls \
        --from-file=ca.crt="$WORK/ca.crt" --from-file=tls.crt="$WORK/tls.crt" \
        --from-file=tls.key="$WORK/tls.key" --dry-run=client -o yaml |
        kubectl_ apply -f - >/dev/null ||
        die "could not write Secret $NAMESPACE/$SECRET; check that you may create and update Secrets there"
    say "wrote Secret $NAMESPACE/$SECRET (CN $DNS_SHORT, valid $DAYS days)"
}

with_openssl() {
    command -v "$OPENSSL" >/dev/null 2>&1 ||
        die "openssl not found; install it, set OPENSSL=/path/to/openssl, or install cert-manager"
    umask 077
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/kubepulse-tls.XXXXXX")
    if existing_pair_usable; then
        cp "$WORK/old-ca.crt" "$WORK/ca.crt"
        say "keeping Secret $NAMESPACE/$SECRET: valid for more than $RENEW_BEFORE_DAYS days and names $DNS_SHORT (FORCE=1 replaces it)"
    else
        generate_pair
    fi
    ca_bundle=$($OPENSSL base64 -A -in "$WORK/ca.crt")
    for apiservice in $APISERVICES; do
        # A leftover cainjector annotation would overwrite the bundle again: drop it.
        kubectl_ annotate apiservice "$apiservice" cert-manager.io/inject-ca-from- >/dev/null 2>&1 || true
        kubectl_ patch apiservice "$apiservice" --type=merge \
            -p "{\"spec\":{\"caBundle\":\"$ca_bundle\",\"insecureSkipTLSVerify\":false}}" >/dev/null ||
            die "could not patch the caBundle of APIService $apiservice; check that you may patch apiservices"
    done
    say "caBundle set on:$(printf ' %s' $APISERVICES)"
    say "pods waiting for the Secret start on their own; running adapters re-read the files when they change"
}

case "$MODE" in
    cert-manager)
        has_cert_manager || die "MODE=cert-manager but the cert-manager CRDs are not installed; install cert-manager or use MODE=openssl"
        with_cert_manager ;;
    openssl) with_openssl ;;
    auto)
        if has_cert_manager; then with_cert_manager; else with_openssl; fi ;;
esac
