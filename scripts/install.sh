#!/usr/bin/env bash
# Install cti into a running FreeSWITCH (or upgrade it, or --uninstall it).
#
#   scripts/install.sh [--dry-run] [--uninstall]
#
# Finds the switch through fs_cli ($FS_CLI, else fs_cli on PATH, else
# /usr/local/freeswitch/bin/fs_cli; extra fs_cli options in $FS_CLI_OPTS, e.g. "-p secret"),
# asks it for its directories, then:
#   1. copies cti/ into the switch's script_dir (where mod_python3 imports from);
#   2. writes the feature-code dialplan <conf_dir>/dialplan/default/cti.xml from cti.yaml;
#   3. installs <conf_dir>/cti.yaml from the example only if there is none (never overwrites);
#   4. makes sure mod_python3 and mod_hash (and mod_db for store: db) load at boot and now;
#   5. reloadxml; drops the switch's already-imported cti modules (mod_python3 keeps them until
#      a restart) so the next call runs the new code; and runs `python cti.status` to prove it;
#   6. the web toolbar and wallboard (python3 -m cti.web): a virtualenv of its own in
#      $CTI_WEB_PREFIX (default /opt/cti-web; never the switch's Python), a systemd unit
#      cti-web where systemd runs, else started in the background; it answers on web.port
#      (8088). CTI_WEB=off leaves it out.
# Idempotent. --dry-run prints what it would do and changes nothing.
set -euo pipefail

DRY=0
UNINSTALL=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    --uninstall) UNINSTALL=1 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $arg (use --dry-run, --uninstall)" >&2; exit 2 ;;
  esac
done

SRC="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-python3}"

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "cti: $*"; }
run() {  # run a command that changes something (or show it with --dry-run)
  if [ "$DRY" = 1 ]; then echo "would run: $*"; else "$@"; fi
}

FS="${FS_CLI:-}"
if [ -z "$FS" ]; then
  if command -v fs_cli >/dev/null 2>&1; then FS=$(command -v fs_cli)
  elif [ -x /usr/local/freeswitch/bin/fs_cli ]; then FS=/usr/local/freeswitch/bin/fs_cli
  else die "no FreeSWITCH found: fs_cli is not on PATH nor in /usr/local/freeswitch/bin (set FS_CLI=/path/to/fs_cli)"
  fi
fi
# shellcheck disable=SC2086
fs() { "$FS" ${FS_CLI_OPTS:-} -x "$1"; }
fs_change() {  # an fs_cli command that changes the switch
  if [ "$DRY" = 1 ]; then echo "would run: fs_cli -x '$1'"; else fs "$1"; fi
}

status=$(fs status 2>&1) || die "FreeSWITCH is not answering fs_cli ($FS): $(echo "$status" | head -n1)"
case "$status" in UP*) ;; *) die "FreeSWITCH is not answering fs_cli ($FS): $(echo "$status" | head -n1)" ;; esac

getvar() {  # a global variable; "" when unset (fs_cli prints "-ERR no reply" for an empty reply)
  local v
  v=$(fs "global_getvar $1" | tr -d '\r\n')
  case "$v" in -ERR*|-USAGE*) v="" ;; esac
  printf '%s' "$v"
}
SCRIPT_DIR=$(getvar script_dir)
CONF_DIR=$(getvar conf_dir)
[ -n "$SCRIPT_DIR" ] && [ -d "$SCRIPT_DIR" ] || die "the switch's script_dir '$SCRIPT_DIR' is not a directory here"
[ -n "$CONF_DIR" ] && [ -d "$CONF_DIR" ] || die "the switch's conf_dir '$CONF_DIR' is not a directory here"
CONFIG=$(getvar cti_config)
CONFIG=${CONFIG:-$CONF_DIR/cti.yaml}
MODULES_XML="$CONF_DIR/autoload_configs/modules.conf.xml"
PYTHON_XML="$CONF_DIR/autoload_configs/python.conf.xml"
WATCHER='<param name="startup-script" value="cti.watcher"/>'
DIALPLAN_XML="$CONF_DIR/dialplan/default/cti.xml"
say "switch: $FS; scripts: $SCRIPT_DIR; config: $CONFIG"

owner_like() {  # give a new file the owner of the directory it is in (e.g. freeswitch:freeswitch)
  [ "$DRY" = 1 ] && return 0
  chown -R --reference="$(dirname "$1")" "$1" 2>/dev/null || true
}

forget_loaded_cti() {  # mod_python3 keeps imported modules until a restart (FACTS.md §7)
  if [ "$(fs 'module_exists mod_python3' | tr -d '\r\n')" = true ] && [ -f "$SCRIPT_DIR/cti/upgrade.py" ]; then
    fs_change "python cti.upgrade"
  fi
}

stop_loaded_cti() {  # before an uninstall: stop the watcher (until its loop has left), restart nothing
  [ "$(fs 'module_exists mod_python3' | tr -d '\r\n')" = true ] && [ -f "$SCRIPT_DIR/cti/upgrade.py" ] || return 0
  if grep -q 'restarts nothing' "$SCRIPT_DIR/cti/upgrade.py"; then
    fs_change "python cti.upgrade stop"
  else  # an older cti: its upgrade would start the watcher again; stop it and give its loop time
    fs_change "python cti.watcher stop"
    [ "$DRY" = 1 ] || sleep 2
  fi
}

# -- the web service (cti/web): its own venv and process, reaching the switch over ESL ----------
WEB="${CTI_WEB:-on}"
WEB_PREFIX="${CTI_WEB_PREFIX:-/opt/cti-web}"
WEB_VENV="${CTI_WEB_VENV:-$WEB_PREFIX/venv}"
WEB_PY="${CTI_WEB_PYTHON:-/usr/bin/python3}"
WEB_UNIT=/etc/systemd/system/cti-web.service
WEB_PID="$WEB_PREFIX/cti-web.pid"
has_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && [ -z "${CTI_WEB_PREFIX:-}" ]; }

web_stop() {  # the service this installer started (its systemd unit, or the pid it wrote)
  if has_systemd && [ -f "$WEB_UNIT" ]; then run systemctl stop cti-web; fi
  if [ -f "$WEB_PID" ]; then
    pid=$(cat "$WEB_PID")
    if [ "$DRY" = 1 ]; then echo "would stop the web service (pid $pid)"
    else
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$WEB_PID"
    fi
  fi
}

web_install() {
  if [ "$WEB" = off ]; then say "web service: left out (CTI_WEB=off)"; return 0; fi
  # genesis, its ESL client, supports Python 3.10 to 3.12 (Requires-Python <3.13,>=3.10):
  # with another interpreter (Debian 11's 3.9, Debian 13's 3.13) the web service is left out,
  # and the switch side installed all the same; CTI_WEB_PYTHON names one that fits
  if ! "$WEB_PY" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' 2>/dev/null; then
    say "web service: left out: genesis, its ESL client, needs Python 3.10 to 3.12 and $WEB_PY is $("$WEB_PY" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo missing) (set CTI_WEB_PYTHON to one that fits)"
    return 0
  fi
  if [ "$DRY" = 1 ]; then
    echo "would make the web service's venv $WEB_VENV ($WEB_PY -m venv; pip install -r config/web-requirements.txt)"
    echo "would copy: $SRC/cti -> $WEB_PREFIX/app/cti"
    if has_systemd; then echo "would write $WEB_UNIT and run: systemctl enable --now cti-web (restart)"
    else echo "would start: $WEB_VENV/bin/python -m cti.web --config $CONFIG (in the background; pid in $WEB_PID)"; fi
    return 0
  fi
  mkdir -p "$WEB_PREFIX"
  if [ ! -x "$WEB_VENV/bin/python" ]; then
    "$WEB_PY" -m venv "$WEB_VENV" || die "cannot make $WEB_VENV (Debian: apt-get install python3-venv)"
  fi
  want=$(grep -E '^[a-z]' "$SRC/config/web-requirements.txt" | tr '\n' ' ')
  # shellcheck disable=SC2086
  if ! "$WEB_VENV/bin/python" - $want <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(any(version(name) != v for name, v in (r.split("==") for r in sys.argv[1:])))
PY
  then
    "$WEB_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$SRC/config/web-requirements.txt" \
      || die "cannot install the web service's packages into $WEB_VENV"
  fi
  rm -rf "$WEB_PREFIX/app.new"
  mkdir -p "$WEB_PREFIX/app.new"
  (cd "$SRC" && find cti \( -name '*.py' -o -path 'cti/web/static/*' \) -print0 | xargs -0 -I{} cp --parents {} "$WEB_PREFIX/app.new/")
  rm -rf "$WEB_PREFIX/app"
  mv "$WEB_PREFIX/app.new" "$WEB_PREFIX/app"
  owner=$(stat -c %U "$CONFIG" 2>/dev/null || echo root)
  web_stop
  if has_systemd; then
    cat > "$WEB_UNIT" <<UNIT
[Unit]
Description=cti web toolbar and wallboard (talks to FreeSWITCH over ESL)
After=network.target freeswitch.service

[Service]
User=$owner
Environment=PYTHONPATH=$WEB_PREFIX/app
ExecStart=$WEB_VENV/bin/python -m cti.web --config $CONFIG
Restart=always
RestartSec=2

[Install]
WantedBy=multi-user.target
UNIT
    systemctl daemon-reload
    systemctl enable -q --now cti-web
    systemctl restart cti-web
  else
    # no systemd here: started in the background (a session of its own, holding none of the
    # installer's open files: a lock or a pipe the installer was run with), its pid kept to
    # stop it on upgrade/uninstall
    PYTHONPATH="$WEB_PREFIX/app" "$WEB_VENV/bin/python" - "$WEB_PREFIX" "$WEB_PID" "$CONFIG" <<'PY'
import subprocess, sys
prefix, pidfile, config = sys.argv[1:]
with open(prefix + "/cti-web.log", "ab") as log:
    p = subprocess.Popen(
        [sys.executable, "-m", "cti.web", "--config", config],
        cwd=prefix, stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True, start_new_session=True,
    )
with open(pidfile, "w") as f:
    f.write(f"{p.pid}\n")
PY
  fi
  where=$(PYTHONPATH="$WEB_PREFIX/app" "$WEB_VENV/bin/python" -c \
    "import sys; from cti import config; w = config.load(sys.argv[1]).web; print(w.port, w.listen)" "$CONFIG" 2>/dev/null) \
    || { say "web service: fix $CONFIG first (see python cti.status)"; return 0; }
  port=${where% *}; listen=${where#* }
  for _ in $(seq 100); do
    if "$WEB_VENV/bin/python" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
      "http://127.0.0.1:$port/" 2>/dev/null; then
      say "web toolbar and wallboard: http://$( [ "$listen" = 0.0.0.0 ] && hostname -f 2>/dev/null || echo "$listen"):$port/"
      return 0
    fi
    sleep 0.1
  done
  die "the web service does not answer on port $port (see $WEB_PREFIX/cti-web.log or journalctl -u cti-web)"
}

web_uninstall() {
  web_stop
  if has_systemd && [ -f "$WEB_UNIT" ]; then
    run systemctl disable -q cti-web
    run rm -f "$WEB_UNIT"
  fi
  for p in "$WEB_PREFIX/app" "$WEB_PREFIX/cti-web.log"; do [ -e "$p" ] && run rm -rf "$p"; done
  if [ -z "${CTI_WEB_VENV:-}" ] && [ -d "$WEB_VENV" ]; then run rm -rf "$WEB_VENV"; fi
  if [ -d "$WEB_PREFIX" ] && [ "$DRY" = 0 ]; then rmdir "$WEB_PREFIX" 2>/dev/null || true; fi
}

if [ "$UNINSTALL" = 1 ]; then
  web_uninstall
  stop_loaded_cti  # first: a watcher running while its files go would log ModuleNotFoundError
  if [ -d "$SCRIPT_DIR/cti" ]; then run rm -rf "$SCRIPT_DIR/cti"; fi
  if [ -f "$DIALPLAN_XML" ]; then run rm -f "$DIALPLAN_XML"; fi
  if [ -f "$PYTHON_XML" ] && grep -q 'value="cti.watcher"' "$PYTHON_XML"; then
    if [ "$DRY" = 1 ]; then echo "would remove the cti.watcher startup-script from $PYTHON_XML"
    else sed -i '/value="cti.watcher"/d' "$PYTHON_XML"; fi
  fi
  fs_change reloadxml
  say "uninstalled; nothing of cti runs. Kept $CONFIG (your seats and passwords), the call records (<db_dir>/cti_records.db, mod_cdr_sqlite and its cdr_sqlite.conf.xml) and the loaded modules (mod_hash, mod_python3); remove them yourself if unused."
  exit 0
fi

# 1. the package
[ -f "$SRC/cti/__init__.py" ] || die "run me from a cti checkout ($SRC has no cti/)"
if [ "$DRY" = 1 ]; then
  echo "would copy: $SRC/cti -> $SCRIPT_DIR/cti"
else
  tmp="$SCRIPT_DIR/.cti.new.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # the switch's copy: not cti/web (the web service's, run from its own venv)
  (cd "$SRC" && find cti -path cti/web -prune -o -name '*.py' -print0 | xargs -0 -I{} cp --parents {} "$tmp/")
  rm -rf "$SCRIPT_DIR/cti.old"
  if [ -d "$SCRIPT_DIR/cti" ]; then mv "$SCRIPT_DIR/cti" "$SCRIPT_DIR/cti.old"; fi
  mv "$tmp/cti" "$SCRIPT_DIR/cti"
  rm -rf "$tmp" "$SCRIPT_DIR/cti.old"
  owner_like "$SCRIPT_DIR/cti"
fi

# 2. the configuration, only if there is none
if [ -f "$CONFIG" ]; then
  say "kept your $CONFIG"
else
  run install -m 0640 "$SRC/config/cti.example.yaml" "$CONFIG"
  owner_like "$CONFIG"
  # no seat is installed with a password anybody knows: each example seat gets a random PIN,
  # shown here once (the file keeps only its hash)
  if [ "$DRY" = 1 ]; then
    echo "would give each example seat a random PIN (python3 -m cti.passwd --seed $CONFIG) and show it once"
  else
    pins=$(cd "$SRC" && "$PY" -m cti.passwd --seed "$CONFIG") || die "cannot set the example seats' PINs in $CONFIG"
    say "installed an example $CONFIG; its seats' PINs, shown only now (change them: python3 -m cti.passwd):"
    printf '%s\n' "$pins" | sed 's/^/cti:   /'
  fi
fi

# 3. the feature-code dialplan, from the config's prefixes
if [ -d "$CONF_DIR/dialplan/default" ]; then
  if [ "$DRY" = 1 ]; then
    echo "would write: $DIALPLAN_XML"
  else
    src_config="$CONFIG"; [ -f "$src_config" ] || src_config="$SRC/config/cti.example.yaml"
    (cd "$SRC" && "$PY" -m cti.dialplan "$src_config") > "$DIALPLAN_XML.new" \
      || (rm -f "$DIALPLAN_XML.new"; die "cannot render the dialplan from $src_config (is it valid? see above)")
    mv "$DIALPLAN_XML.new" "$DIALPLAN_XML"
    owner_like "$DIALPLAN_XML"
  fi
else
  say "no $CONF_DIR/dialplan/default: add dialplan/cti.xml to your dialplan yourself"
fi

# 4. modules: at boot (modules.conf.xml) and now
store=""
if [ -f "$CONFIG" ]; then store=$(sed -n 's/^store:[[:space:]]*\([a-z]*\).*/\1/p' "$CONFIG" | head -n1); fi
modules="mod_hash mod_python3"
[ "$store" = db ] && modules="mod_hash mod_db mod_python3"
if [ "$store" = redis ] && ! /usr/bin/python3 -c 'import redis' 2>/dev/null; then
  say "store: redis needs redis-py in the switch's Python: apt-get install python3-redis"
fi
for mod in $modules; do
  if [ -f "$MODULES_XML" ] && ! grep -Eq "^[[:space:]]*<load module=\"$mod\"" "$MODULES_XML"; then
    if [ "$DRY" = 1 ]; then
      echo "would add <load module=\"$mod\"/> to $MODULES_XML"
    else
      sed -i "s|</modules>|    <load module=\"$mod\"/>\n  </modules>|" "$MODULES_XML"
      say "added $mod to $MODULES_XML"
    fi
  fi
  if [ "$(fs "module_exists $mod" | tr -d '\r\n')" != true ]; then
    fs_change "load $mod"
  fi
done

# 4b. call records (README "Call records"): mod_cdr_sqlite writes table cti_calls into
# <db_dir>/cti_records.db (or the config's records.db) from cti's template, for the legs that
# carry cti's record variables
DB_DIR=$(getvar db_dir)
CDR_XML="$CONF_DIR/autoload_configs/cdr_sqlite.conf.xml"
RECORDS_SET=$(cd "$SRC" && "$PY" -m cti.switch.records db "$CONFIG") || RECORDS_SET=""
RECORDS_DB=${RECORDS_SET:-$DB_DIR/cti_records.db}
cdr_in_use=0  # somebody's mod_cdr_sqlite runs (now or at boot): its one table and template are theirs
if [ "$(fs 'module_exists mod_cdr_sqlite' | tr -d '\r\n')" = true ] \
  || { [ -f "$MODULES_XML" ] && grep -Eq '^[[:space:]]*<load module="mod_cdr_sqlite"' "$MODULES_XML"; }; then cdr_in_use=1; fi
if [ -f "$CDR_XML" ] && ! grep -q 'cti call records' "$CDR_XML" && [ "$cdr_in_use" = 1 ]; then
  say "kept your $CDR_XML (not cti's): mod_cdr_sqlite has one table and template, so cti writes no call records; see README \"Call records\""
elif [ -z "$RECORDS_SET" ] && { [ -z "$DB_DIR" ] || [ ! -d "$DB_DIR" ]; }; then
  say "the switch's db_dir '$DB_DIR' is not a directory here: no call records (or set records.db in $CONFIG)"
elif [ -n "$RECORDS_SET" ] && [ ! -d "$(dirname "$RECORDS_SET")" ]; then
  say "records.db $RECORDS_SET: its directory does not exist; make it, writable by the switch's user: no call records"
elif [ "$DRY" = 1 ]; then
  echo "would write $CDR_XML (python3 -m cti.switch.records conf), create $RECORDS_DB, load mod_cdr_sqlite"
else
  if [ -f "$CDR_XML" ] && ! grep -q 'cti call records' "$CDR_XML" && [ ! -e "$CDR_XML.cti-orig" ]; then
    cp -p "$CDR_XML" "$CDR_XML.cti-orig"  # the stock file of an unused module: kept aside
  fi
  (cd "$SRC" && "$PY" -m cti.switch.records conf "$CONFIG") > "$CDR_XML.new" || die "cannot render $CDR_XML"
  changed=1
  if [ -f "$CDR_XML" ] && cmp -s "$CDR_XML.new" "$CDR_XML"; then changed=0; fi
  # the table (with the columns a newer version adds), then at once the template that fills
  # them (the reload below): mod_cdr_sqlite's INSERT gives every column in order
  (cd "$SRC" && "$PY" -m cti.switch.records init "$RECORDS_DB") || { rm -f "$CDR_XML.new"; die "cannot create $RECORDS_DB"; }
  owner_like "$RECORDS_DB"
  for f in "$RECORDS_DB-wal" "$RECORDS_DB-shm"; do [ -e "$f" ] && owner_like "$f"; done
  mv "$CDR_XML.new" "$CDR_XML"
  owner_like "$CDR_XML"
  if [ -f "$MODULES_XML" ] && ! grep -Eq '^[[:space:]]*<load module="mod_cdr_sqlite"' "$MODULES_XML"; then
    sed -i "s|</modules>|    <load module=\"mod_cdr_sqlite\"/>\n  </modules>|" "$MODULES_XML"
    say "added mod_cdr_sqlite to $MODULES_XML"
  fi
  if [ "$(fs 'module_exists mod_cdr_sqlite' | tr -d '\r\n')" != true ]; then
    fs_change "load mod_cdr_sqlite"
  elif [ "$changed" = 1 ]; then  # it reads its template when it loads
    fs_change "reload mod_cdr_sqlite"
  fi
  say "call records: $RECORDS_DB (table cti_calls)"
fi

# 5. the call watcher starts with mod_python3 (python.conf.xml startup-script)
if [ -d "$CONF_DIR/autoload_configs" ] && ! { [ -f "$PYTHON_XML" ] && grep -q 'value="cti.watcher"' "$PYTHON_XML"; }; then
  if [ "$DRY" = 1 ]; then
    echo "would add $WATCHER to $PYTHON_XML"
  elif [ -f "$PYTHON_XML" ] && grep -q '<settings>' "$PYTHON_XML"; then
    sed -i "s|<settings>|<settings>\n    $WATCHER|" "$PYTHON_XML"
    say "added the cti.watcher startup-script to $PYTHON_XML"
  elif [ -f "$PYTHON_XML" ]; then
    say "add $WATCHER to the <settings> of $PYTHON_XML yourself"
  else
    printf '<configuration name="python.conf" description="Python Configuration">\n  <settings>\n    %s\n  </settings>\n</configuration>\n' "$WATCHER" > "$PYTHON_XML"
    owner_like "$PYTHON_XML"
    say "wrote $PYTHON_XML with the cti.watcher startup-script"
  fi
fi

# 6. take effect now
fs_change reloadxml
forget_loaded_cti
case "$(fs 'python cti.watcher' 2>/dev/null)" in
  "+OK call watcher running"*) ;;
  *) fs_change "pyrun cti.watcher" ;;
esac
if [ "$DRY" = 1 ]; then
  echo "would run: fs_cli -x 'python cti.status'"
  web_install
  exit 0
fi
out=$(fs "python cti.status")
echo "$out"
case "$out" in
  "-ERR config"*) say "installed; fix $CONFIG as said above" ;;
  "-ERR"*) die "installed, but 'python cti.status' answered: $(echo "$out" | head -n1)" ;;
  *) say "installed and answering" ;;
esac
web_install
