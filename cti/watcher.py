"""The call watcher. python.conf.xml: <param name="startup-script" value="cti.watcher"/>
fs_cli: `pyrun cti.watcher` starts it, `python cti.watcher stop` stops it, `python cti.watcher` tells."""

from cti._entry import watcher


def runtime(args):
    watcher.run()


def fsapi(session, stream, env, args):
    stream.write(watcher.command(args))
