#!/bin/sh
# Entry point of the hello test app: a tiny HTTP server made of busybox nc
# plus a shell handler, so the image needs nothing beyond a static busybox.
set -eu

# Arguments (a task's `command`: a one-off job such as a migration) run instead of the server, as the usual
# entrypoint scripts do.
if [ "$#" -gt 0 ]; then
    exec "$@"
fi

VERSION="${VERSION:-v1}"
PORT="${PORT:-8080}"
CRASH="${CRASH:-0}"
START_DELAY="${START_DELAY:-0}"
ON_TERM="${ON_TERM:-exit}"

if [ "$CRASH" = "1" ]; then
    echo "fatal: hello $VERSION refusing to start (CRASH=1)" >&2
    exit 3
fi

# Stop when asked, as a web app should: PID 1 ignores any signal it has no
# handler for, so without this trap `docker stop` (ECS stopping the task)
# would wait its whole timeout and then kill the container. The shell runs a
# trap only between commands, hence `wait` on what runs in the background.
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; exit 0' TERM INT
if [ "$ON_TERM" = "ignore" ]; then
    # As an app with no handler: SIGTERM does nothing, and whoever stops the
    # container waits out its stop timeout, then kills it (exit 137).
    trap '' TERM
fi

if [ "$START_DELAY" -gt 0 ] 2>/dev/null; then
    # Announce the delay so a slow start is distinguishable from a hang in
    # the container log.
    echo "hello $VERSION starting in ${START_DELAY}s"
    sleep "$START_DELAY" &
    wait "$!"
fi

echo "hello $VERSION listening on 127.0.0.1:$PORT"

# More than one -l keeps nc accepting after the first connection, forking one
# handler per connection. busybox nc also passes the number of -l flags to
# listen() as the backlog: plain -ll gives 2, and bursts of connections then
# stall on SYN retransmits (1 s and more), so repeat it BACKLOG times.
BACKLOG=128
listen_flags="-"
i=0
while [ "$i" -lt "$BACKLOG" ]; do
    listen_flags="${listen_flags}l"
    i=$((i + 1))
done

# The trailing address restricts the listener to loopback because the
# container shares the host network namespace.
busybox nc "$listen_flags" -p "$PORT" 127.0.0.1 -e /app/handler.sh &
server=$!
wait "$server"
