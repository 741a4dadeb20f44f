"""Home regions an account can have, and each one's minimum age for an account.

The policy (section 9) refuses accounts under 16, or under 13 where the local rule
allows it. Sources of the numbers:

- ``eu``: GDPR art. 8 sets 16 (member states may lower it; we keep the default).
- ``uk``: UK GDPR / Data Protection Act 2018 s. 9 set 13.
- ``us``: COPPA protects children under 13.
- ``cn``: PIPL treats under-14s as sensitive; the policy's 16 is stricter, so 16.
- ``in``: the DPDP Act 2023 makes everyone under 18 a child needing verifiable parental
  consent, which this product cannot collect, so 18 (stricter than the policy).

A region key is also the name of that region's cloud endpoint (``upload_cursors.endpoint``,
``erase_requests.endpoint``): data of an account goes to its home region only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Region:
    key: str
    name: str
    minimum_age: int


REGIONS: dict[str, Region] = {
    r.key: r
    for r in (
        Region("eu", "European Union", 16),
        Region("uk", "United Kingdom", 13),
        Region("us", "United States", 13),
        Region("cn", "China (mainland)", 16),
        Region("in", "India", 18),
    )
}


def region(key: str) -> Region:
    """The region for ``key`` (case-insensitive); ValueError naming the known ones."""
    found = REGIONS.get(key.strip().lower())
    if found is None:
        raise ValueError(f"unknown region {key!r}; known: {', '.join(sorted(REGIONS))}")
    return found
