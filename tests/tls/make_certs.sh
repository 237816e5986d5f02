#!/bin/sh
# Make a test CA and the certificates the TLS tests, the demos and the
# benchmark use, with the openssl command, into DIR (default build/certs):
#   ca.pem ca.key           the test CA (trust it to run the chat over https)
#   server.pem server.key   for 127.0.0.1, ::1 and localhost, signed by the CA
#   other.pem other.key     for other.test (SNI), signed by the CA
#   client.pem client.key   a client certificate (CN=test-client), by the CA
#   rogue.pem rogue.key     a self-signed client certificate the CA never saw
# Keys are ECDSA P-256. Nothing here is committed; a second run with every
# file present does nothing.
set -e
dir=${1:-build/certs}
mkdir -p "$dir"
cd "$dir"
[ -s ca.pem ] && [ -s server.pem ] && [ -s other.pem ] && [ -s client.pem ] &&
    [ -s rogue.pem ] && exit 0
days=3650
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
            -out "$1.key" 2>/dev/null; }
# sign NAME SUBJECT EXTENSIONS: a certificate for NAME.key by the CA.
sign() {
    key "$1"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days $days -sha256 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
key ca
openssl req -x509 -new -key ca.key -sha256 -days $days -out ca.pem \
    -subj "/CN=ws test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
sign server "/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost"
sign other "/CN=other.test" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:other.test"
sign client "/CN=test-client/O=ws tests" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
key rogue
openssl req -x509 -new -key rogue.key -sha256 -days $days -out rogue.pem \
    -subj "/CN=rogue-client" 2>/dev/null
chmod 600 ./*.key
rm -f ca.srl
echo "certs: made in $dir (trust ca.pem)"
