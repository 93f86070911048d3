#!/bin/sh
# The cluster image's entrypoint (Dockerfile.litefs): LiteFS needs root for
# its FUSE mount; it runs the server as the app's user (litefs.yml, exec).
# Litestream's state lives on the volume beside LiteFS's, owned by the app.
set -eu
state=${LITESTREAM_STATE_DIR:-/var/lib/litefs/litestream}
mkdir -p /litefs "$state"
chown ticketing: "$state"
exec litefs mount -config /etc/litefs.yml
