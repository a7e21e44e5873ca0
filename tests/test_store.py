"""Every value round-trips exactly through mod_hash and mod_db, and nothing is cut silently."""

from __future__ import annotations

import freeswitch
import pytest

from cti.domain.errors import CtiError
from cti.switch.api import Switch
from cti.switch.store import PIECE_BYTES, SwitchStore

HOSTILE = [
    "",
    "plain",
    "  padded  ",
    "it's here",
    "'whole'",
    "v with 'quote'",
    '"dq whole"',
    "a/b/c//d/",
    "C:\\path\\to",
    "a\\\\b",
    '{"s":"x\\"y"}',
    "tab\tnew\nline\rcr",
    "%41 %%  $${var} ${x}",
    "x;y|z=1,2 :_: @host",
    "héllo wörld",
    "坐席签入示忙示闲班长",
    "emoji 😀 mixed",
    "\\",
    "'",
    "trailing\\",
    "a" * 255,
    "b" * 256,
    "r" * 1000,
    "长" * 300,  # 900 bytes
    "x" * 249 + "长",  # a character across the piece boundary
    ("{'k': \"v\\\\/\"} " * 40),
]
KEYS = ["seat.101", "phone.i.101", "a_b", "with/slash", "space key", "长键", "x" * 60]


@pytest.fixture(params=["hash", "db"])
def store(request):
    freeswitch.reset()
    return SwitchStore(Switch(), request.param, "cti")


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_values_round_trip(store, value):
    store.put("seat.101", value)
    assert store.get("seat.101") == value
    assert store.get_many(["seat.101", "seat.102", "seat.103"]) == {"seat.101": value}


@pytest.mark.parametrize("key", KEYS)
def test_hostile_keys_stay_apart(store, key):
    store.put(key, f"value of {key}")
    store.put("a", "not a_b")  # realm_key naming would make 'cti' + 'a_b' collide with others
    assert store.get(key) == f"value of {key}"
    assert store.get("a") == "not a_b"


def test_db_never_holds_more_than_select_returns():
    core = freeswitch.reset()
    store = SwitchStore(Switch(), "db", "cti")
    for value in HOSTILE:
        store.put("seat.101", value)
        assert all(len(v.encode()) <= PIECE_BYTES for v in core.db.values())
        assert store.get("seat.101") == value
    store.delete("seat.101")
    assert core.db == {}, "pieces of the last long value are deleted with it"


def test_rewriting_a_long_value_leaves_no_old_pieces():
    core = freeswitch.reset()
    store = SwitchStore(Switch(), "db", "cti")
    store.put("k", "x" * 2000)
    n_long = len(core.db)
    assert n_long > 8
    store.put("k", "y" * 600)
    assert len(core.db) == 1 + 3
    store.put("k", "short")
    assert list(core.db.values()) == ["=short"]


def test_other_realms_in_hash_dump_are_ignored():
    core = freeswitch.reset()
    api = freeswitch.API()
    api.executeString("hash insert/xcti/seat.101/=foreign")
    api.executeString("hash insert/cti_seat/101/=collides")
    store = SwitchStore(Switch(), "hash", "cti")
    store.put("seat.102", "mine")
    assert store.get_many(["seat.101", "seat.102", "seat.103"]) == {"seat.102": "mine"}
    assert "cti_seat_101" in core.hash


def test_claim_and_release_are_atomic_compare_and_set(store):
    assert store.claim("phone.i.101", "101") is None
    assert store.claim("phone.i.101", "102") == "101"
    assert store.release("phone.i.101", "102") is False
    assert store.get("phone.i.101") == "101"
    assert store.release("phone.i.101", "101") is True
    assert store.get("phone.i.101") is None


def test_missing_module_is_a_store_error():
    core = freeswitch.reset()
    core.modules.discard("mod_db")
    store = SwitchStore(Switch(), "db", "cti")
    with pytest.raises(CtiError) as err:
        store.get("seat.101")
    assert err.value.code == "store" and "mod_db is not loaded" in err.value.message


def test_a_value_cti_did_not_write_is_reported_not_misread():
    freeswitch.reset()
    freeswitch.API().executeString("hash insert/cti/seat.101/garbage")
    with pytest.raises(CtiError) as err:
        SwitchStore(Switch(), "hash", "cti").get("seat.101")
    assert err.value.code == "store"
