#!/usr/bin/env bash
# A test CA and certificates for the xDS TLS listener, with Debian's openssl.
#
#   make-test-certs.sh DIR [CLIENT=SPIFFE_URI ...]
#
# DIR/ca.crt, ca.key        the CA (pass ca.crt to --tls-client-ca and to clients as their trust)
# DIR/server.crt, .key      the server's certificate: DNS localhost, IP 127.0.0.1
# DIR/CLIENT.crt, .key      one client certificate per CLIENT=URI, the URI as its URI SAN
#                           (e.g. echo=spiffe://cluster.local/ns/default/sa/echo)
# EC P-256 keys (fast handshakes); every certificate valid for 30 days.
set -euo pipefail
dir=${1:?usage: make-test-certs.sh DIR [CLIENT=SPIFFE_URI ...]}
shift
mkdir -p "$dir"
cd "$dir"
ossl() { openssl "$@" 2>/dev/null; }

ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -keyout ca.key -out ca.crt -subj "/O=fastpilot test/CN=fastpilot test CA $RANDOM" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign

issue() {  # name subject extensions
  local name=$1 subject=$2 ext=$3
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subject"
  printf '%b' "$ext" > "$name.ext"
  ossl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -out "$name.crt" -extfile "$name.ext"
  rm -f "$name.csr" "$name.ext"
  chmod 600 "$name.key"
}

issue server "/CN=fastpilot" \
  "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE"
for spec in "$@"; do
  name=${spec%%=*}
  uri=${spec#*=}
  issue "$name" "/CN=$name" "subjectAltName=URI:$uri\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE"
done
rm -f ca.srl
echo "$dir: ca.crt server.crt $(for s in "$@"; do printf '%s.crt ' "${s%%=*}"; done)"
