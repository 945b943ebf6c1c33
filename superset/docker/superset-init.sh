#!/usr/bin/env bash
# One-shot initialisation run by the superset-init service before Superset starts.
# Idempotent: safe on every `invoke start`.
set -o errexit -o pipefail -o nounset

superset db upgrade
# create-admin leaves an existing admin untouched.
superset fab create-admin \
  --username "${SUPERSET_ADMIN_USERNAME}" \
  --firstname Enlaight \
  --lastname Admin \
  --email "${SUPERSET_ADMIN_EMAIL}" \
  --password "${SUPERSET_ADMIN_PASSWORD}"
superset init
