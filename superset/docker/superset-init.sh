#!/usr/bin/env bash
# One-shot initialisation run by the superset-init service before Superset starts.
# Idempotent: safe on every `invoke start`. No secret on any command line (argv shows in `ps` on the host):
# the admin is created by a Python script that reads SUPERSET_ADMIN_* from the environment.
set -o errexit -o pipefail -o nounset

superset db upgrade
# Roles and permissions (Admin, Gamma, ...): before the admin, who gets the Admin role.
superset init
python /app/docker/superset-create-admin.py
