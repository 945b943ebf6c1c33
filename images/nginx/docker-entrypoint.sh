#!/bin/sh
# Entrypoint of enlaight-local/nginx: the official image's start-up hooks, for the nginx command only:
#  - /etc/nginx/templates/*.template -> /etc/nginx/conf.d/* with envsubst (only variables that are set
#    in the environment are replaced, so nginx's own $host, $uri ... stay intact);
#  - executable /docker-entrypoint.d/*.sh scripts run, *.envsh files are sourced.
set -e

render_templates() {
  template_dir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
  suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
  output_dir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
  filter="${NGINX_ENVSUBST_FILTER:-}"
  [ -d "$template_dir" ] || return 0
  # shellcheck disable=SC2046
  defined_envs=$(printf '${%s} ' $(awk "END { for (name in ENVIRON) { print ( name ~ /${filter}/ ) ? name : \"\" } }" < /dev/null))
  find "$template_dir" -follow -type f -name "*$suffix" -print | while read -r template; do
    relative_path="${template#"$template_dir/"}"
    output_path="$output_dir/${relative_path%"$suffix"}"
    mkdir -p "$(dirname "$output_path")"
    echo "$0: Running envsubst on $template to $output_path" >&2
    envsubst "$defined_envs" < "$template" > "$output_path"
  done
}

if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
  render_templates
  for f in /docker-entrypoint.d/*; do
    case "$f" in
      *.envsh) if [ -x "$f" ]; then echo "$0: Sourcing $f" >&2; . "$f"; fi ;;
      *.sh) if [ -x "$f" ]; then echo "$0: Launching $f" >&2; "$f"; fi ;;
    esac
  done
fi

exec "$@"
