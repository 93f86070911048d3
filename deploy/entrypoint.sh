#!/bin/sh
# The container's entrypoint. Fly mounts the volume at DATA_DIR owned by
# root, and the server should not run as root: started as root, hand the
# data directory to the app's user and become that user; started as any
# other user (docker run --user ...), just run.
set -eu
bin=${TICKETING_BIN:-/usr/local/bin/ticketing}
user=${TICKETING_USER:-ticketing}
if [ "$(id -u)" = 0 ]; then
	data=${DATA_DIR:-./data}
	mkdir -p "$data"
	chown -R "$user:" "$data"
	exec setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups "$bin" "$@"
fi
exec "$bin" "$@"
