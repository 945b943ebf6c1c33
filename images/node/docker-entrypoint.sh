#!/bin/sh
# Entrypoint of enlaight-local/node, as in the official image: `docker run IMAGE script.js` or
# `docker run IMAGE --inspect ...` means node with those args; any real command runs as given.
set -e
if [ "${1#-}" != "$1" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
