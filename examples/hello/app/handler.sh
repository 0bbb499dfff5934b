#!/bin/sh
# Handles one HTTP connection: stdin/stdout are the socket, stderr is the
# container log (nc leaves it untouched), hence every log line goes to >&2.

VERSION="${VERSION:-v1}"
HEALTH="${HEALTH:-ok}"
CR="$(printf '\r')"

# The timeout keeps a client that connects but never sends (e.g. a TCP-only
# health probe that stays open) from pinning a handler process forever.
IFS=' ' read -r -t 10 method path proto || exit 0
method="${method%"$CR"}"
path="${path%"$CR"}"

# Drain the headers: closing a socket with unread input makes the kernel send
# RST, which can destroy the response before the client reads it.
while IFS= read -r -t 10 line; do
    line="${line%"$CR"}"
    [ -z "$line" ] && break
done

respond() {
    # $1 status code, $2 reason phrase, $3 body
    printf 'HTTP/1.0 %s %s\r\nContent-Type: text/plain\r\nContent-Length: %s\r\nConnection: close\r\n\r\n' \
        "$1" "$2" "${#3}"
    if [ "$method" != "HEAD" ]; then
        printf '%s' "$3"
    fi
    echo "$method $path $1" >&2
    exit 0
}

case "$method" in
    GET|HEAD) ;;
    *) respond 405 "Method Not Allowed" "method not allowed
" ;;
esac

case "${path%%\?*}" in
    /)
        respond 200 OK "hello $VERSION
"
        ;;
    /health)
        case "$HEALTH" in
            500) respond 500 "Internal Server Error" "unhealthy
" ;;
            flap)
                # Healthy for 3 s, unhealthy for 3 s, and so on: a check that flaps.
                if [ $(( $(date +%s) / 3 % 2 )) -eq 0 ]; then
                    respond 200 OK "ok
"
                fi
                respond 500 "Internal Server Error" "flapping
"
                ;;
            slow)
                sleep 30
                respond 200 OK "ok
"
                ;;
            *) respond 200 OK "ok
" ;;
        esac
        ;;
    *)
        respond 404 "Not Found" "not found
"
        ;;
esac
