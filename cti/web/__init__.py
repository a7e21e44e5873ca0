"""The web agent toolbar (坐席工具条) and supervisor wallboard (班长监控台): ``python3 -m cti.web``.

A process of its own beside the switch (browser traffic never runs on the switch's Python),
that reaches the switch only over ESL: every action is ``api python cti.<verb> ... <operator>``
with the logged-in seat as the operator, and one event subscription (``CUSTOM cti::seat
cti::queue cti::supervisor``) is fanned out to the browsers over WebSocket. Not installed into
the switch: it runs in its own virtualenv (aiohttp, genesis), see scripts/install.sh.
"""
