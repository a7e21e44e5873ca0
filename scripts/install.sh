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
#      a restart) so the next call runs the new code; and runs `python cti.status` to prove it.
# Idempotent. --dry-run prints what it would do and changes nothing.
set -euo pipefail

DRY=0
UNINSTALL=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    --uninstall) UNINSTALL=1 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

if [ "$UNINSTALL" = 1 ]; then
  stop_loaded_cti  # first: a watcher running while its files go would log ModuleNotFoundError
  if [ -d "$SCRIPT_DIR/cti" ]; then run rm -rf "$SCRIPT_DIR/cti"; fi
  if [ -f "$DIALPLAN_XML" ]; then run rm -f "$DIALPLAN_XML"; fi
  if [ -f "$PYTHON_XML" ] && grep -q 'value="cti.watcher"' "$PYTHON_XML"; then
    if [ "$DRY" = 1 ]; then echo "would remove the cti.watcher startup-script from $PYTHON_XML"
    else sed -i '/value="cti.watcher"/d' "$PYTHON_XML"; fi
  fi
  fs_change reloadxml
  say "uninstalled; nothing of cti runs. Kept $CONFIG (your seats and passwords) and the loaded modules (mod_hash, mod_python3); remove them yourself if unused."
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
  (cd "$SRC" && find cti -name '*.py' -print0 | xargs -0 -I{} cp --parents {} "$tmp/")
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
  say "installed an example $CONFIG: edit its seats and passwords (python3 -m cti.passwd)"
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
  exit 0
fi
out=$(fs "python cti.status")
echo "$out"
case "$out" in
  "-ERR config"*) say "installed; fix $CONFIG as said above" ;;
  "-ERR"*) die "installed, but 'python cti.status' answered: $(echo "$out" | head -n1)" ;;
  *) say "installed and answering" ;;
esac
