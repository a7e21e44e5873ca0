"""Several switches, one call center: seat state, claims and the queue shared through Redis.

Imported only when ``store: redis`` is configured (redis-py: Debian's ``python3-redis``).
Redis is no FreeSWITCH API, so this is neither the domain nor the switch layer: it
implements the domain's ports (Store, the seat locks, the queue) over one Redis that every
switch of the call center shares.
"""
