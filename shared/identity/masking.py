"""Personal data (个人信息) masked by role: in responses, log lines and dead letters.

Names keep the family name, phones the first three and last four digits, ID numbers their
ends, addresses the area only; the same value quoted in free text (a notice's text quoting
the address) is masked too.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

from shared.identity.access import Caller


def mask_name(name: str) -> str:
    """张三丰 → 张**; keeps the family name only."""
    name = name.strip()
    return name[:1] + "*" * max(1, len(name) - 1) if name else name


def mask_phone(phone: str) -> str:
    """13812345678 → 138****5678."""
    digits = re.sub(r"\s", "", phone)
    if len(digits) <= 4:
        return "*" * len(digits)
    if len(digits) < 8:
        return "*" * (len(digits) - 4) + digits[-4:]
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_id(value: str) -> str:
    return value[:2] + "*" * max(1, len(value) - 4) + value[-2:] if len(value) > 4 else "****"


def mask_address(value: str) -> str:
    """上海市黄浦区南京东路100号3室 → 上海市黄浦区南京**********: keeps the area only."""
    keep = min(8, len(value) // 2)
    return value[:keep] + "*" * max(1, len(value) - keep)


PHONE_KEYS = frozenset({"phone", "mobile", "tel", "telephone", "contact_phone"})
ID_KEYS = frozenset({"id_number", "id_card", "idcard", "identity_number"})
ADDRESS_KEYS = frozenset({"address", "home_address"})
PERSON_KEYS = frozenset({"complainant", "reporter", "contact"})
PERSONAL_FIELDS = ("name", "phone", "id_number", "address")
"""What counts as personal data (个人信息) in every response, log line and dead letter."""


def _masker(key: str, *, person: bool) -> Callable[[str], str] | None:
    """How a field named ``key`` is masked (None: it is no personal data); in a person's
    record (complainant, party) its ``name`` and ``id`` are personal data too."""
    if person and key == "name":
        return mask_name
    if key in PHONE_KEYS:
        return mask_phone
    if key in ID_KEYS or (person and key == "id"):
        return mask_id
    if key in ADDRESS_KEYS:
        return mask_address
    return None


def _mask_person(person: dict[str, Any], seen: dict[str, str]) -> bool:
    found = False
    for key, value in list(person.items()):
        mask = _masker(key, person=True)
        if mask is not None and isinstance(value, str) and value:
            person[key] = seen[value] = mask(value)
            found = True
    return found


def _mask_fields(node: Any, seen: dict[str, str]) -> bool:
    """Mask every personal-data field under ``node``; ``seen`` maps each original value to
    its mask (the same value quoted in free text is masked by :func:`_mask_quotes`)."""
    found = False
    if isinstance(node, list):
        for item in node:
            found = _mask_fields(item, seen) or found
        return found
    if not isinstance(node, dict):
        return False
    individual = node.get("party_type") == "individual"
    for key, value in list(node.items()):
        if key in PERSON_KEYS and isinstance(value, dict):
            found = _mask_person(value, seen) or found
        elif key == "party" and isinstance(value, dict):
            if value.get("type") == "individual":
                found = _mask_person(value, seen) or found
        elif key == "party_name" and individual and isinstance(value, str) and value:
            node[key] = seen[value] = mask_name(value)
            found = True
        elif isinstance(value, str) and value:
            mask = _masker(key, person=False)
            if mask is not None:
                node[key] = seen[value] = mask(value)
                found = True
        elif isinstance(value, dict | list):
            found = _mask_fields(value, seen) or found
    return found


def _mask_quotes(node: Any, seen: dict[str, str]) -> Any:
    """Personal data quoted in free text (a notice's text quoting the address) masked too."""
    if isinstance(node, str):
        for original, masked in seen.items():
            if len(original) >= 2 and original in node:
                node = node.replace(original, masked)
        return node
    if isinstance(node, list):
        return [_mask_quotes(v, seen) for v in node]
    if isinstance(node, dict):
        return {k: _mask_quotes(v, seen) for k, v in node.items()}
    return node


def mask_tree(value: Any) -> tuple[Any, bool]:
    """A masked deep copy of a JSON-like value, and whether it held personal data."""
    out = copy.deepcopy(value)
    seen: dict[str, str] = {}
    found = _mask_fields(out, seen)
    return (_mask_quotes(out, seen) if found else out), found


def has_personal_data(value: Any) -> bool:
    return mask_tree(value)[1]


PHONE_RE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{2})\d{14}(\d{1}[0-9Xx])(?![0-9A-Za-z])")


def mask_text(text: str) -> str:
    """Free text (log lines, dead-letter bodies): JSON is masked field by field; mobile
    numbers and 18-digit ID numbers anywhere are masked by pattern."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            masked, found = mask_tree(json.loads(stripped))
            if found:
                text = json.dumps(masked, ensure_ascii=False)
        except ValueError:
            pass
    text = PHONE_RE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    return ID_RE.sub(lambda m: f"{m.group(1)}{'*' * 14}{m.group(2)}", text)


def present(caller: Caller, doc: dict[str, Any]) -> dict[str, Any]:
    """A stored document as this caller may see it, before it is cut to a response model:
    masked for roles without personal data (so free text quoting a masked field, e.g. a
    notice's summary quoting the address, is masked even where the field is left out);
    for the others it is noted for the audit record of this request."""
    masked, found = mask_tree(doc)
    if not found:
        return doc
    if not caller.pii:
        return dict(masked)
    caller.reads.append(str(doc.get("_id", doc.get("id"))))
    return doc


def ids_of(body: Any) -> list[str]:
    """The ids of the objects a response carries (for the audit record)."""
    if isinstance(body, dict):
        if isinstance(body.get("items"), list):
            return [str(i.get("id")) for i in body["items"] if isinstance(i, dict)][:200]
        if "id" in body:
            return [str(body["id"])]
    return []
