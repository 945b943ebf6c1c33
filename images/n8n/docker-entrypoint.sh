#!/bin/sh
# Entrypoint of enlaight-local/n8n, as in the official n8nio/n8n image: arguments go to the n8n CLI
# (`docker run IMAGE import:workflow ...`), no arguments start the server.
set -e
if [ -d /opt/custom-certificates ]; then
  # The official image's hook for private CAs; here the file is simply appended to what Node trusts.
  echo "Trusting custom certificates from /opt/custom-certificates."
  bundle="$(mktemp)"
  cat /opt/custom-certificates/* > "$bundle"
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
    cat "$NODE_EXTRA_CA_CERTS" >> "$bundle"
  fi
  export NODE_EXTRA_CA_CERTS="$bundle"
fi
if [ "$#" -gt 0 ]; then
  exec n8n "$@"
fi
exec n8n
