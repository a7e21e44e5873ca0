#!/usr/bin/env python3
"""A fake ``fs_cli -x '<command>'`` for the installer tests. The switch's state is a JSON file
in $FAKE_FS (globals, loaded modules); every command is appended to $FAKE_FS/commands.log.
``python ...`` runs through the test shim with the switch's script_dir first on sys.path,
as mod_python3 does, so it exercises the *installed* copy of cti."""

import json
import os
import sys

root = os.environ["FAKE_FS"]
state_path = os.path.join(root, "state.json")
with open(state_path) as fh:
    state = json.load(fh)
args = sys.argv[1:]
while args and args[0] != "-x":
    args = args[2:] if args[0] in ("-p", "-H", "-P") else args[1:]
command = args[1] if len(args) > 1 else ""
with open(os.path.join(root, "commands.log"), "a") as fh:
    fh.write(command + "\n")
name, _, arg = command.partition(" ")
if state.get("down"):
    print("[ERROR] fs_cli.c:1699 main() Error Connecting []")
    sys.exit(1)
if name == "status":
    print("UP 0 years, 0 days, 0 hours, 1 minute, 28 seconds, 687 milliseconds")
elif name == "global_getvar":
    print(state["globals"].get(arg) or "-ERR no reply\n")
elif name == "module_exists":
    print("true" if arg in state["loaded"] else "false")
elif name == "load":
    state["loaded"].append(arg)
    print("+OK Reloading XML\n+OK\n")
elif name == "reload":
    print("+OK module unloaded\n+OK module loaded\n")
elif name == "reloadxml":
    print("+OK [Success]\n")
elif name == "pyrun":
    print("OK")
elif name == "python":
    sys.path[:0] = [state["globals"]["script_dir"], os.environ["FAKE_FS_SHIM"]]
    import freeswitch

    freeswitch.CORE.globals.update(state["globals"])
    print(freeswitch.CORE.api("python", arg) or "-ERR no reply\n")
else:
    print("-ERR " + name + " Command not found!\n")
with open(state_path, "w") as fh:
    json.dump(state, fh)
