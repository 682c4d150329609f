#!/bin/sh
# Stand-in for the sirius-postgres image's healthcheck (pg_isready on 127.0.0.1).
set -eu
# busybox ash supports pipefail; shellcheck only knows POSIX sh here.
# shellcheck disable=SC3040
set -o pipefail
if timeout 3 wget -q -O /dev/null http://127.0.0.1:5432/ 2>/dev/null; then
    echo "127.0.0.1:5432 - accepting connections"
    exit 0
fi
echo "127.0.0.1:5432 - no response"
exit 2
