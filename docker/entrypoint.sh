#!/bin/sh
# Container entry point: the first argument picks the program, the rest are its flags.
#   server [flags]            the API server (elastic-thought); also the default
#   worker [flags]            a job worker (elastic-thought-worker)
#   status, publish-metrics   elastic-thought's admin subcommands (also: server status …)
#   et-caffe <cmd>            the builtin Caffe-compatible engine
#   --flag …                  flags alone go to the server
#   anything else             run as given (e.g. sh for debugging)
# Flags can also come from ET_<FLAG> variables (see README); secrets such as the CouchDB URL
# with its password belong there, not in flags, which show up in `ps` and `docker inspect`.
set -eu

# Overridable for the tests of this script (test/deploy/docker-files.test.ts) only.
app=${ET_APP_DIR:-/app}
role_file=${ET_ROLE_FILE:-/tmp/elastic-thought.role}

role=server
if [ "$#" -gt 0 ]; then
  case "$1" in
    server|elastic-thought) role=server; shift ;;
    worker|elastic-thought-worker) role=worker; shift ;;
    status|publish-metrics) role=command ;;
    et-caffe) role=et-caffe; shift ;;
    -*) role=server ;;
    *) exec "$@" ;;
  esac
fi
# `server status …`: a word after `server` is one of elastic-thought's subcommands, which
# serve nothing, so the healthcheck must not probe for a port.
if [ "$role" = server ] && [ "$#" -gt 0 ]; then
  case "$1" in
    -*) ;;
    *) role=command ;;
  esac
fi

# The healthcheck reads this to know whether there is an HTTP port to probe.
printf '%s\n' "$role" > "$role_file" 2>/dev/null || true

case "$role" in
  server|command) exec node "$app"/bin/elastic-thought.js "$@" ;;
  worker) exec node "$app"/bin/elastic-thought-worker.js "$@" ;;
  et-caffe) exec node "$app"/bin/et-caffe.js "$@" ;;
esac
