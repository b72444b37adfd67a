#!/usr/bin/env bash
# Conformance: drives a standalone google-emulator with Google's official Python client.
# Env: CONFORMANCE_VENV (venv cache dir), CARGO_TARGET_DIR, PYTHON (default python3),
#      GOOGLE_EMULATOR_BIN (use this binary instead of building one).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."

python="${PYTHON:-python3}"
venv="${CONFORMANCE_VENV:-$HOME/.cache/chronos-conformance-venv}"
requirements="$here/requirements.txt"
started=$(date +%s)

# The venv is rebuilt only when the pins or the interpreter change.
stamp="$( (cat "$requirements"; "$python" --version) | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements-stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "conformance: installing pinned clients into $venv"
  "$python" -m venv --clear "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-input -r "$requirements"
  echo "$stamp" > "$venv/.requirements-stamp"
fi

if [ -n "${GOOGLE_EMULATOR_BIN:-}" ]; then
  bin="$GOOGLE_EMULATOR_BIN"
else
  cargo build -q --locked -p google-emulator
  bin="${CARGO_TARGET_DIR:-target}/debug/google-emulator"
fi

work="$(mktemp -d)"
emulator_pid=""
cleanup() {
  if [ -n "$emulator_pid" ] && kill -0 "$emulator_pid" 2>/dev/null; then
    kill -TERM "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" --addr 127.0.0.1:0 >"$work/stdout" 2>"$work/stderr" &
emulator_pid=$!

base=""
for _ in $(seq 1 100); do
  line="$(head -n 1 "$work/stdout" 2>/dev/null || true)"
  case "$line" in
    "listening on http://"*) base="${line#listening on }"; break ;;
  esac
  kill -0 "$emulator_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$base" ]; then
  echo "conformance: FAILED, the emulator did not print 'listening on http://...'" >&2
  cat "$work/stdout" "$work/stderr" >&2
  exit 1
fi

status=0
timeout 300 "$venv/bin/python" "$here/conformance.py" "$base" || status=$?

# The README promises a graceful stop on SIGTERM.
kill -TERM "$emulator_pid"
stop_status=0
for _ in $(seq 1 100); do
  kill -0 "$emulator_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$emulator_pid" 2>/dev/null; then
  echo "conformance: the emulator ignored SIGTERM for 10 s" >&2
  kill -KILL "$emulator_pid" 2>/dev/null || true
  stop_status=1
fi
wait "$emulator_pid" 2>/dev/null || stop_status=$?
emulator_pid=""
if [ "$stop_status" -ne 0 ]; then
  echo "conformance: the emulator exited with status $stop_status after SIGTERM" >&2
  status=1
fi

elapsed=$(( $(date +%s) - started ))
if [ "$status" -ne 0 ]; then
  echo "conformance: FAILED against $base (${elapsed}s); emulator stderr tail:" >&2
  tail -n 20 "$work/stderr" >&2
  exit 1
fi
echo "conformance: OK against $base (${elapsed}s including setup)"
