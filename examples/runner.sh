#!/bin/sh
# An external runner in POSIX shell and curl: it runs one execution of an `external` task
# and reports to taskstream through POST /api/executions/ID/report/ (see README,
# "Programs"). Any language can do the same: it is plain HTTP and JSON.
#
#   TASKSTREAM_TOKEN=tsk_... examples/runner.sh EXECUTION_ID
#   TASKSTREAM_TOKEN=tsk_... examples/runner.sh        # creates an external task, runs it
#
# Environment: TASKSTREAM_URL (default http://127.0.0.1:8000), TASKSTREAM_TOKEN (made at
# /tokens/ or by `manage.py create_token USERNAME`), RUNNER_WORK_SECONDS (how long each
# step "works", default 1), RUNNER_QUESTION (what it asks before publishing).
#
# Exit: 0 succeeded, 1 a report was refused or the server is unreachable, 2 cancelled.
set -eu

URL=${TASKSTREAM_URL:-http://127.0.0.1:8000}
TOKEN=${TASKSTREAM_TOKEN:?set TASKSTREAM_TOKEN: make a token at /tokens/ or with manage.py create_token}
WORK_SECONDS=${RUNNER_WORK_SECONDS:-1}
QUESTION=${RUNNER_QUESTION:-Publish the results?}

tmp=$(mktemp -d)
stream_pid=
cleanup() {
  [ -n "$stream_pid" ] && kill "$stream_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf 'runner: %s\n' "$*" >&2; }

# json_string TEXT: TEXT as a JSON string ("..." with \ " and line breaks escaped).
json_string() {
  printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' |
    awk 'BEGIN { ORS = ""; print "\"" } NR > 1 { print "\\n" } { print } END { print "\"" }'
}

# field NAME: a number from the last response (good enough here; use jq in real code).
field() { sed -n "s/.*\"$1\": *\([0-9][0-9]*\).*/\1/p" "$tmp/response" | head -n 1; }

# call METHOD PATH [BODY]: the API; the response body lands in $tmp/response.
call() {
  code=$(curl -sS -o "$tmp/response" -w '%{http_code}' -X "$1" \
    -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} "$URL$2") || { say "cannot reach $URL"; exit 1; }
  case $code in
    2??) ;;
    *) say "$1 $2 refused ($code): $(cat "$tmp/response")"; exit 1 ;;
  esac
}

# report BODY: one report; stops (cancelled) when someone asked to cancel.
report() {
  call POST "/api/executions/$EXECUTION/report/" "$1"
  if grep -q '"cancel_requested": *true' "$tmp/response"; then
    say "cancel requested: stopping"
    call POST "/api/executions/$EXECUTION/report/" '{"status": "cancelled", "error": "cancelled by request"}'
    exit 2
  fi
}

log() { report "{\"log\": [{\"level\": \"$1\", \"message\": $(json_string "$2")}]}"; }
step() { report "{\"step\": $(json_string "$1"), \"status\": \"$2\"}"; }
progress() { report "{\"progress\": {\"done\": $1, \"total\": $2, \"message\": $(json_string "$3")}}"; }

# work: the step's own work; a heartbeat every second keeps the lease.
work() {
  i=0
  while [ "$i" -lt "$WORK_SECONDS" ]; do
    sleep 1
    report '{"heartbeat": true}'
    i=$((i + 1))
  done
}

# ask PROMPT: wait for a person's answer, which arrives as an execution.answered event on
# /events/ (followed from just after the question, reconnecting if the stream ends).
# ANSWER is then the answer as it stood in the event's JSON (escaped): ready to be put
# between quotes in a report.
ask() {
  report "{\"ask\": $(json_string "$1")}"
  after=$(field last_event_id)
  say "waiting for an answer to: $1"
  while :; do
    rm -f "$tmp/events"
    mkfifo "$tmp/events"
    curl -sSN -H "Authorization: Bearer $TOKEN" -H 'Accept: text/event-stream' \
      "$URL/events/?execution=$EXECUTION&type=execution.answered,execution.status&last_event_id=$after" \
      >"$tmp/events" 2>/dev/null &
    stream_pid=$!
    while IFS= read -r line; do
      case $line in
        id:*) after=${line#id: } ;;
        data:*'"type":"execution.answered"'*)
          ANSWER=$(printf '%s\n' "$line" | sed -nE 's/.*"answer":"(([^"\\]|\\.)*)".*/\1/p')
          kill "$stream_pid" 2>/dev/null || true
          stream_pid=
          return 0
          ;;
        data:*'"to":"cancelled"'* | data:*'"to":"failed"'*)
          say "the execution ended while it waited"
          exit 2
          ;;
      esac
    done <"$tmp/events"
    # The stream ended (its lifetime, a restart): resume after the last id seen.
    wait "$stream_pid" 2>/dev/null || sleep 2
    stream_pid=
  done
}

if [ $# -ge 1 ]; then
  EXECUTION=$1
else
  call POST /api/tasks/ '{"title": "shell runner example", "function": "external"}'
  EXECUTION=$(sed -n 's/.*"latest_execution": *{"id": *\([0-9][0-9]*\).*/\1/p' "$tmp/response")
  say "created task $(field id), execution $EXECUTION"
fi

report '{"status": "running"}'
say "running execution $EXECUTION"
progress 0 3 "starting"

step fetch started
log info "fetching the input"
work
step fetch completed
progress 1 3 "fetched"

step transform started
log info "transforming"
work
step transform completed
progress 2 3 "transformed"

ask "$QUESTION"
say "answer: $(printf '%s' "$ANSWER" | sed -e 's/\\"/"/g' -e 's/\\\\/\\/g')"
report '{"status": "running"}'

step publish started
report "{\"log\": [{\"level\": \"info\", \"message\": \"answer was: $ANSWER\"}]}"
work
step publish completed
progress 3 3 "published"

report "{\"status\": \"succeeded\", \"result\": {\"answer\": \"$ANSWER\"}}"
say "succeeded"
