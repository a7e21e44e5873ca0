"""The baseline: an entry module that does nothing but answer (what mod_python3 costs alone)."""


def fsapi(session, stream, env, args):
    stream.write("+OK\n")
