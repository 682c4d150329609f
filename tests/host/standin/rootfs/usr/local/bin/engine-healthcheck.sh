#!/bin/sh
# Stand-in for the sirius-engine healthcheck: API key file readable and the
# agent gRPC port (50051) open.
set -eu
# busybox ash supports pipefail; shellcheck only knows POSIX sh here.
# shellcheck disable=SC3040
set -o pipefail
f=${SIRIUS_API_KEY_FILE:-/run/secrets/sirius_api_key}
if [ ! -r "$f" ]; then
    echo "internal API key file is not readable: $f" >&2
    exit 1
fi
if ! timeout 3 wget -q -O /dev/null "http://127.0.0.1:${GRPC_AGENT_PORT:-50051}/" 2>/dev/null; then
    echo "agent gRPC port ${GRPC_AGENT_PORT:-50051} is not open" >&2
    exit 1
fi
exit 0
