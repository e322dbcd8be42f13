"""Fake but well-formed identities: people, phones, businesses with 统一社会信用代码.

Every value comes from the ``random.Random`` passed in, so the demo stays deterministic.
Credit codes carry correct check digits (GB 32100-2015 and the GB 11714 organisation code
inside them) so a validator downstream accepts them; they are random, not real registrations.
"""

from __future__ import annotations

import random
import uuid

from devtools.demo.catalogue import BRANDS, BUSINESS_SUFFIX, GIVEN_CHARS, SURNAMES

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def uuid_from(rng: random.Random) -> str:
    """A version-4 shaped UUID drawn from ``rng`` (never ``uuid4``: output must repeat)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def org_code_check(body: str) -> str:
    """GB 11714 check character of an 8-character organisation code body."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body, ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    return "X" if value == 10 else "0" if value == 11 else str(value)


def uscc_check(body: str) -> str:
    """GB 32100 check character of the first 17 characters of a credit code."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(code: str) -> bool:
    """Both check digits right (used by tests; handy for anyone validating demo data)."""
    if len(code) != 18 or any(c not in USCC_ALPHABET for c in code):
        return False
    return org_code_check(code[8:16]) == code[16] and uscc_check(code[:17]) == code[17]


def uscc(rng: random.Random, district: str, sole_trader: bool) -> str:
    """统一社会信用代码: 9 (market regulator) + 1 company / 2 个体工商户 + district + org code."""
    head = "92" if sole_trader else "91"
    org_alphabet = "0123456789" if sole_trader else "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = ("MA" if not sole_trader else "L") + "".join(
        rng.choice(org_alphabet) for _ in range(6 if not sole_trader else 7)
    )
    org = body + org_code_check(body)
    first17 = head + district + org
    return first17 + uscc_check(first17)


def person_name(rng: random.Random) -> str:
    surname = rng.choice(SURNAMES)
    length = 1 if rng.random() < 0.35 else 2
    return surname + "".join(rng.choice(GIVEN_CHARS) for _ in range(length))


def complainant_name(rng: random.Random) -> str:
    """12345 often records only a surname and a title (张先生, 李女士)."""
    if rng.random() < 0.4:
        return rng.choice(SURNAMES) + rng.choice(("先生", "女士"))
    return person_name(rng)


def mobile_phone(rng: random.Random) -> str:
    prefix = rng.choice(("133", "135", "136", "137", "138", "139", "150", "158", "177", "186"))
    return prefix + f"{rng.randrange(10**8):08d}"


def masked_id_number(rng: random.Random, district: str) -> str:
    """A masked resident id as printed on published decisions (310106********123X)."""
    tail = f"{rng.randrange(1000):03d}" + rng.choice("0123456789X")
    return f"{district}********{tail}"


def business(rng: random.Random, district: str, kind: str, district_name: str) -> tuple[str, str]:
    """(name, credit code) of a plausible business of ``kind`` in the district."""
    suffix, reg = rng.choice(BUSINESS_SUFFIX[kind])
    brand = rng.choice(BRANDS)
    place = district_name.removesuffix("新区").removesuffix("区")
    name = f"上海{brand}{suffix}" if reg == "company" else f"{place}{brand}{suffix}"
    return name, uscc(rng, district, sole_trader=reg == "sole")
