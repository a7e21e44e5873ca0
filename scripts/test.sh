#!/usr/bin/env bash
# cti's checks: ruff (lint + format), mypy, then pytest on the main interpreter and again on
# the other Pythons the switch side runs on (3.9 for Debian 11, 3.13 for Debian 13).
# The main interpreter (${PYTHON:-python3}) uses .venv with setup.cfg's [test], [dev] and [web] extras;
# each other one its own .venv-3.X with the python3-yaml and python3-redis versions of the
# Debian release it stands for. Venvs are made and filled on first use, refilled when their
# pins change (.cti-deps). ruff and mypy run on the main interpreter only; the live layer runs
# only there too (CTI_LIVE=0 for the others), and so do the web service's tests. An interpreter this machine lacks is named in
# one line and not tested. The exit status is non-zero if any interpreter's run fails.
# Arguments go to pytest, on every interpreter:  scripts/test.sh -k robcall
set -euo pipefail
cd "$(dirname "$0")/.."

# The other interpreters: minor version | Debian release | pins. The libraries are the
# release's own (packages.debian.org: bullseye python3-yaml 5.3.1, python3-redis 3.5.3;
# trixie python3-yaml 6.0.2, python3-redis 6.1.0); the test tools are the newest that install
# there (pytest 9 and pytest-mock 3.16+ need 3.10+).
OTHERS=(
  "3.9|Debian 11|PyYAML==5.3.1 redis==3.5.3 pytest==8.4.2 pytest-mock==3.15.1"
  "3.13|Debian 13|PyYAML==6.0.2 redis==6.1.0 pytest==9.2.0 pytest-mock==3.17.0"
)

# store: redis is tested against a real redis-server (Debian's package): the cluster tests
# start a private one on a unix socket and stop it when they end
# the web pages are tested in Debian's headless Chromium (chromium-driver drives it; a CJK font
# draws the Chinese pages): nothing downloads a browser
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -x /usr/bin/chromedriver ] || missing="$missing chromium-driver"
[ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing="$missing fonts-wqy-microhei"
if [ -n "$missing" ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
if [ ! -f .venv/.cti-deps ] || [ setup.cfg -nt .venv/.cti-deps ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test,dev,web]"
  touch .venv/.cti-deps
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

# python<minor> on this machine, newest first: the system's, then pyenv's (found on disk, not
# through PATH), one that can make a venv
find_python() {
  local minor=$1 c
  local pyenv="${PYENV_ROOT:-${HOME:-/root}/.pyenv}"
  for c in "/usr/bin/python$minor" "/usr/local/bin/python$minor" \
    $(ls -d "$pyenv"/versions/"$minor".*/bin/python"$minor" 2>/dev/null | sort -rV); do
    if [ -x "$c" ] && "$c" -c "import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != tuple(map(int, '$minor'.split('.'))))" 2>/dev/null; then
      echo "$c"
      return 0
    fi
  done
  return 1
}

# "python 3.9.18 (Debian 11: PyYAML 5.3.1, redis-py 3.5.3)": what a venv really holds
describe() {
  "$1" -c '
import sys, yaml, redis
c = "" if yaml.__with_libyaml__ else ", no libyaml"
print("python %d.%d.%d (%s: PyYAML %s%s, redis-py %s)" % (sys.version_info[:3] + (sys.argv[1], yaml.__version__, c, redis.__version__)))
' "$2"
}

color=()
[ -t 1 ] && color=(--color=yes)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
summary=()
failed=0

# run_pytest <venv python> <label> [pytest args]: its output, and its result line kept
run_pytest() {
  local py=$1 label=$2 rc result
  shift 2
  echo "$label:"
  set +e
  "$py" -m pytest "${color[@]}" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  result=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -v '^[[:space:]]*$' | tail -n 1)
  [ "$rc" = 0 ] || { failed=1; result="$result (pytest exit $rc)"; }
  summary+=("$label: $result")
}

run_pytest .venv/bin/python "$(describe .venv/bin/python "main, .venv")" "$@"

for other in "${OTHERS[@]}"; do
  IFS='|' read -r minor debian pins <<<"$other"
  venv=".venv-$minor"
  echo
  if ! python=$(find_python "$minor"); then
    summary+=("python $minor: not on this machine — not tested")
    echo "${summary[-1]}"
    continue
  fi
  # a venv whose interpreter is gone or is another one is made again
  if [ "$("$venv/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null)" != "$("$python" -c 'import sys; print(sys.version)')" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
  fi
  if [ "$(cat "$venv/.cti-deps" 2>/dev/null)" != "$pins" ]; then
    # PyYAML 5.3.1 is an sdist without pyproject.toml: --use-pep517 builds it as a wheel
    # (with libyaml when its headers are here, as Debian's is) instead of setup.py install
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --use-pep517 $pins
    echo "$pins" >"$venv/.cti-deps"
  fi
  # the switch side's Pythons: the web service (tests/web) runs in a venv of its own, on the
  # main interpreter (genesis needs 3.10+), never on the switch's Python
  CTI_LIVE=0 run_pytest "$venv/bin/python" "$(describe "$venv/bin/python" "$debian")" --ignore=tests/web "$@"
done

echo
printf '%s\n' "${summary[@]}"
exit "$failed"
