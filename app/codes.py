"""Codes as they arrive from HIS systems: normalised once at the edge, validated where used.

National formats (国家医保信息业务编码):
- institution: ``H`` (hospital) or ``P`` (pharmacy) + 6-digit division + 5-digit sequence
- practitioner: ``D`` doctor, ``N`` nurse, ``HY`` pharmacist, ``HJ`` technician + 6 + 6 digits
- resident ID (GB 11643-1999), used as the service code where a region says so (威海)
Local codes (a hospital's own department, staff or institution numbers) are short ASCII tokens.

Digits are ASCII ``[0-9]`` everywhere: ``\\d`` also matches Arabic-Indic (``٣``), Devanagari and
other decimal digits, which NFKC leaves as they are, so ``D٣٧٠٨٠٢١٠٠٠٠٦`` would pass as a code
that names nobody — or, written by an admin, a second record for the same person. Full-width
digits are no exception to the rule: :func:`normalize` turns them into ASCII first.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

# ``\Z``, not ``$``: ``$`` also matches before a trailing newline.
INSTITUTION_RE = re.compile(r"^[HP][0-9]{11}\Z")
PRACTITIONER_RE = re.compile(r"^(?:D|N|HY|HJ)[0-9]{12}\Z")
LOCAL_CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,31}\Z")
REGION_RE = re.compile(r"^[0-9]{6}\Z")
_ID_RE = re.compile(r"^[0-9]{17}[0-9X]\Z")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def normalize(raw: str) -> str:
    """Full-width to ASCII, drop every whitespace, upper-case: ``' h3708０２00001 '`` → ``H37080200001``."""
    if raw.isascii():  # NFKC leaves ASCII unchanged; skip it on the common path
        return "".join(raw.split()).upper() if not raw.isalnum() else raw.upper()
    return "".join(unicodedata.normalize("NFKC", raw).split()).upper()


def is_resident_id(code: str) -> bool:
    """GB 11643 check: 17 digits, then the ISO 7064 MOD 11-2 check character."""
    if not _ID_RE.match(code):
        return False
    total = sum(int(c) * w for c, w in zip(code[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == code[17]


def looks_like_resident_id(code: str) -> bool:
    """Shape only, so that a mistyped ID number is still treated as personal data."""
    return _ID_RE.match(code) is not None


def is_national_practitioner(code: str) -> bool:
    return PRACTITIONER_RE.match(code) is not None


def is_national_institution(code: str) -> bool:
    return INSTITUTION_RE.match(code) is not None


def category_of_national_code(code: str) -> str | None:
    if code.startswith("D"):
        return "doctor"
    if code.startswith("N"):
        return "nurse"
    if code.startswith("HY"):
        return "pharmacist"
    if code.startswith("HJ"):
        return "technician"
    return None


def pii_digest(secret: str, value: str) -> str:
    """Keyed hash of a resident ID: stable for lookups, useless without the secret."""
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


def mask_resident_id(code: str) -> str:
    """What an officer needs to recognise a person: region prefix and last four characters."""
    return f"{code[:4]}**********{code[-4:]}"


def practitioner_token(code: str, secret: str) -> str:
    """The name a practitioner goes by in keys, rows and logs: the code, or ``ID:`` + HMAC."""
    if looks_like_resident_id(code):
        return "ID:" + pii_digest(secret, code)
    return code


def display_code(code: str) -> str:
    return mask_resident_id(code) if looks_like_resident_id(code) else code
