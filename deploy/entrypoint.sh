#!/bin/sh
# The container's entrypoint. Fly mounts the volume at DATA_DIR owned by
# root, and the server should not run as root: started as root, hand the
# data directory to the app's user and become that user; started as any
# other user (docker run --user ...), just run.
#
# RESTORE=latest, or an RFC 3339 time (2026-12-01T20:00:00Z), restores
# every module file from the replica (`ticketing restore`) before serving.
# It runs once per value: DATA_DIR/.restore-done keeps the last value
# done, so a restart does not restore again.
set -eu
bin=${TICKETING_BIN:-/usr/local/bin/ticketing}
user=${TICKETING_USER:-ticketing}
data=${DATA_DIR:-./data}
as_app() {
	if [ "$(id -u)" = 0 ]; then
		setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups "$@"
	else
		"$@"
	fi
}
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$data"
	chown -R "$user:" "$data"
fi
if [ -n "${RESTORE:-}" ] && [ "$(cat "$data/.restore-done" 2>/dev/null || true)" != "$RESTORE" ]; then
	if [ "$RESTORE" = latest ]; then
		as_app "$bin" restore
	else
		as_app "$bin" restore -timestamp "$RESTORE"
	fi
	echo "$RESTORE" | as_app tee "$data/.restore-done" >/dev/null
fi
if [ "$(id -u)" = 0 ]; then
	exec setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups "$bin" "$@"
fi
exec "$bin" "$@"
