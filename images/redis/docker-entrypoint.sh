#!/bin/sh
# Entrypoint of enlaight-local/redis: same contract as the official redis image's entrypoint.
set -e

# `command: ["--appendonly", "yes"]` or a *.conf path means redis-server with those args.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi

# As root: own the data dir, then drop to the redis user (the official image uses gosu for this).
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

# The official image compiles Redis with protected mode off, so other containers can connect without
# a password; Debian's binary defaults to on. Turn it off unless the command line decides itself.
# It goes right after the optional config file, so later command-line options still win.
if [ "$1" = redis-server ]; then
  case " $* " in
    *" --protected-mode "*) ;;
    *)
      shift
      if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
        conf="$1"; shift
        set -- redis-server "$conf" --protected-mode no "$@"
      else
        set -- redis-server --protected-mode no "$@"
      fi
      ;;
  esac
fi

# Same as the official image: files Redis writes (RDB/AOF) are private to the redis user.
umask 0077
exec "$@"
