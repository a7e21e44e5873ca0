#!/usr/bin/env bash
# cti's checks: ruff (lint + format), mypy, pytest. Creates .venv and installs the test
# tools (setup.cfg's [test], [dev] and [web] extras) on first use or when setup.cfg changes.
# Arguments go to pytest:  scripts/test.sh -k robcall
set -euo pipefail
cd "$(dirname "$0")/.."
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
.venv/bin/python -m pytest "$@"
