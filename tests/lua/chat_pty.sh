#!/usr/bin/env bash
# Drives `slua chat` through a pseudo-terminal (script from util-linux): types a turn, waits for
# the reply to stream, presses Ctrl-C, then checks that the chat goes on.
#   chat_pty.sh SLUA OUTFILE [chat flags...]
set -u
slua=$1; out=$2; shift 2
dir=$(mktemp -d)
trap 'exec 3>&- 2>/dev/null; kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
mkfifo "$dir/in"
cmd=$(printf '%q ' "$slua" chat "$@")
script -qfec "$cmd" /dev/null < "$dir/in" > "$out" 2>&1 &
pid=$!
exec 3> "$dir/in"

# wait_for TEXT [seconds]: until the transcript contains TEXT
wait_for() {
  local limit=$(( ${2:-60} * 10 ))
  for ((i = 0; i < limit; i++)); do
    grep -qF -- "$1" "$out" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$1'" >&2
  cat "$out" >&2
  exit 1
}

wait_for '> '
printf 'Hi\n' >&3
wait_for 'Lily'           # the reply is streaming
printf '\003' >&3
wait_for '[stopped]'
printf 'again\n' >&3
wait_for 'turns 2'        # --stats after the second reply
printf '/save %s\n' "$dir/saved.json" >&3
wait_for 'saved 4 messages'
cp "$dir/saved.json" "$out.saved.json"
printf '/quit\n' >&3
exec 3>&-
wait $pid
