#!/bin/sh
# Entrypoint of the samem image: `samem serve` on all interfaces of the container, secured with
# CurveZMQ. Keys live in $SAMEM_KEYS (default /keys; mount a folder there to keep them); when it
# holds no server key, a server key pair and one client key pair are generated:
#   $SAMEM_KEYS/server.key          the service's public key: give it to clients
#   $SAMEM_KEYS/client.key_secret   a client's secret key: give it to the acquisition PC
#   $SAMEM_KEYS/clients/            public keys of the authorised clients (add more, restart)
# Arguments after the image name are passed to `samem serve` (e.g. --record /data/run.h5).
set -eu
KEYS="${SAMEM_KEYS:-/keys}"
if [ ! -f "$KEYS/server.key_secret" ]; then
    python - "$KEYS" <<'PY'
import os
import shutil
import sys
from pathlib import Path

import zmq.auth

keys = Path(sys.argv[1])
clients = keys / "clients"
clients.mkdir(parents=True, exist_ok=True)
os.umask(0o077)
zmq.auth.create_certificates(keys, "server")
public, secret = zmq.auth.create_certificates(keys, "client")
for path in (keys / "server.key_secret", Path(secret)):
    os.chmod(path, 0o600)
shutil.copy(public, clients / "client.key")
print(
    f"samem: generated CurveZMQ keys in {keys}: clients need server.key and client.key_secret "
    "(samem replay ... --server-key server.key --client-key client.key_secret)",
    file=sys.stderr,
)
PY
fi
mkdir -p "$KEYS/clients"
exec samem serve \
    --ingest tcp://0.0.0.0:5555 --publish tcp://0.0.0.0:5556 --control tcp://0.0.0.0:5557 \
    --allow-remote --curve-secret-key "$KEYS/server.key_secret" --curve-clients "$KEYS/clients" \
    "$@"
