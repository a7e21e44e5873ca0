"""The screen pop: what a seat's phone and cti's events show of a caller, like mod_callcenter's
``cc_export_vars``: its number and name, the hotline's name, the seconds it waited so far, and
each of the hotline's ``export_vars``.

A pop is pairs (field, value). The fields are cti's words; ``label`` gives each its public
name, the key in ``cti.status ... json`` (and, the switch layer adds, the event header that
carries it); the switch layer also puts each on the seat's leg as a channel variable.
"""

from __future__ import annotations

from typing import Tuple

NUMBER = "caller_number"
NAME = "caller_name"
HOTLINE_NAME = "hotline_name"
WAITED = "waited"  # seconds the caller waited so far
TRANSFERRED_BY = "transferred_by"  # the seat that transferred the caller here (cti.transfer)
EXPORTED = "var."  # + the name of one of the caller's channel variables (a hotline's export_vars)

Pop = Tuple[Tuple[str, str], ...]

# what the switch splits a dial string on (``,`` ``|`` ``:_:``), expands (``$``), quotes or
# brackets, and the ``^^`` delimiter change: a caller's value keeps none of them
_UNSAFE = str.maketrans({c: " " for c in ",[]{}'\"\\^$|<>`;:"})


def safe_value(value: str, most: int = 80) -> str:
    """A caller's value (a name from a SIP From header: the caller chooses it) made safe to
    put on a leg and in an event: no character the switch would split on, expand or quote; no
    control characters; at most ``most`` characters."""
    text = "".join(ch for ch in value[: most * 2] if ch.isprintable()).translate(_UNSAFE)
    return " ".join(text.split())[:most]


def exported(name: str) -> str:
    """The field of the caller's channel variable ``name`` (a hotline's ``export_vars``)."""
    return EXPORTED + name


def label(field: str) -> str:
    """The field's public name: ``caller_number`` -> ``Caller-Number``, ``var.crm_id`` ->
    ``Var-crm_id``. A field already so named (a seat record written before) stays."""
    if field.startswith(EXPORTED):
        return "Var-" + field[len(EXPORTED) :]
    if field[:1].isupper():
        return field
    return "-".join(word.capitalize() for word in field.split("_"))
