"""`python cti.upgrade`: drop the cti modules this switch has imported, so that the next call
loads the code now on disk (mod_python3 keeps imported modules until a restart). The installer
runs it after copying a new version."""

import sys


def fsapi(session, stream, env, args):
    names = [n for n in list(sys.modules) if n == "cti" or n.startswith("cti.")]
    for name in names:
        del sys.modules[name]
    stream.write(f"+OK dropped {len(names)} cti modules; the next call loads the installed code\n")
