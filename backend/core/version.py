# Backend version string, served by GET /api/version/.
# (The e2e hot-reload test edits this file and expects the running dev server to pick it up.)
VERSION = "0.1.0"
