"""The order record the sample Python guests read, as the Rust crate
``guests/orders`` defines it: one JSON object per record value, as
``weir produce --generate`` writes them."""

import json


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def parse_order(value: bytes) -> dict:
    """Parses an order the way the Rust guests' serde does: an object whose
    five fields (``id``, ``customer``, ``amount_cents``, ``currency``,
    ``country``) have the right types; extra fields are ignored. Raises
    ``ValueError`` (``JSONDecodeError``, ``UnicodeDecodeError``) saying what
    was wrong."""
    order = json.loads(value.decode("utf-8"), parse_constant=_reject_constant)
    if not isinstance(order, dict):
        raise ValueError("expected an object")
    for name in ("id", "amount_cents"):
        if type(order.get(name)) is not int:
            raise ValueError(f"field {name} must be an integer")
    if not 0 <= order["id"] < 1 << 64:
        raise ValueError("field id must be a u64")
    if not -(1 << 63) <= order["amount_cents"] < 1 << 63:
        raise ValueError("field amount_cents must be an i64")
    for name in ("customer", "currency", "country"):
        if type(order.get(name)) is not str:
            raise ValueError(f"field {name} must be a string")
        # json accepts an escaped lone surrogate ("\ud800"); serde, and UTF-8, do not.
        try:
            order[name].encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"field {name} has a lone surrogate") from None
    return order


def json_string(s: str) -> str:
    """``s`` as a JSON string literal, escaped as serde_json escapes it."""
    return json.dumps(s, ensure_ascii=False)
