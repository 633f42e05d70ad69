#!/usr/bin/env bash
# How the course's certificates were made (run once; the results are committed): a CA "k8slab course CA" and
# leaf certificates for app.example.com, www.example.com and *.example.com, all ECDSA P-256, valid 10 years.
# The CA's key (ca.key) is shipped ON PURPOSE: exercise tls may let cert-manager sign with it (an Issuer of type
# CA). It protects nothing but this course's example.com names, trusted only by the grader's client. A real CA
# key is the one secret that must never leave its vault.
set -euo pipefail
cd "$(dirname "$0")"
days=3650
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/O=k8slab/CN=k8slab course CA" -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
leaf() {   # leaf FILE-NAME DNS-NAME
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"
  openssl req -new -key "$1.key" -subj "/O=k8slab/CN=$2" -out "$1.csr"
  printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' "$2" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days "$days" \
    -extfile "$1.ext" -out "$1.crt"
  rm -f "$1.csr" "$1.ext"
}
leaf app.example.com app.example.com
leaf www.example.com www.example.com
leaf wildcard.example.com '*.example.com'
rm -f ca.srl
