"""Supervision-lead detectors (监督线索) over complaints: pure decisions, no I/O.

- 推诿 (bounce): returned ``returns`` times, or handed between units ``handovers`` times.
- 以属地为由推责 (responsibility shift): a matter the routing catalogue keeps with a district
  department goes to a street team after that department held it (seed 000: 擅自将本部门的
  执法事项转交给街镇执行), whatever words the return gave.
- 高频投诉 (hotspot): N complaints of one matter at one address or target within a window.
- 应立未立 (case not opened): a confirmed violation with no enforcement case for the
  target within N days of the resolution.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

from pydantic import BaseModel

_PUNCT = re.compile(r"[\s,，。.;；:：、()（）\[\]【】\"'“”‘’-]+")
_USCC = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}")
_PAREN = re.compile(r"[（(].*?[）)]")


class BounceThresholds(BaseModel):
    returns: int = 2
    handovers: int = 3


def is_bounce(returns: int, handovers: int, t: BounceThresholds) -> bool:
    """推诿: returned at least ``t.returns`` times or passed on at least ``t.handovers``."""
    return returns >= t.returns or handovers >= t.handovers


def is_responsibility_shift(
    *,
    matter_level: str | None,
    owner: str | None,
    held_by: Sequence[str],
    to_unit: str,
    to_level: str,
    exceptions: Iterable[str] = (),
) -> bool:
    """A district department's own matter went to a street team after the department held it.

    ``matter_level``/``owner``: the routing catalogue's level and department for the matter;
    ``held_by``: the units that held the order before this dispatch; ``to_unit``/``to_level``:
    where it goes now; ``exceptions``: units the catalogue names for single streets (a lawful
    street route). Seed 000_ea473ff1d8cb02b8.txt: “擅自将本部门的执法事项转交给街镇执行”.
    """
    if matter_level != "district" or not owner or to_level != "street":
        return False
    if to_unit in set(exceptions):
        return False
    return owner in held_by


def normalise_place(text: str) -> str:
    """Addresses as typed differ in spaces, punctuation and the city prefix."""
    cleaned = _PUNCT.sub("", text.strip())
    return cleaned.removeprefix("上海市")


def target_keys(target: str | None) -> list[str]:
    """Ways to recognise one business: its 统一社会信用代码 if present, and its name."""
    if not target or not target.strip():
        return []
    keys: list[str] = [f"uscc:{code}" for code in _USCC.findall(target.upper())]
    name = normalise_place(_PAREN.sub("", target))
    if name and not _USCC.fullmatch(name.upper()):
        keys.append(f"name:{name}")
    return sorted(set(keys))


def place_keys(address: str, target: str | None) -> list[str]:
    """The keys a hotspot is counted on: the address, and the target when named."""
    keys = [f"addr:{normalise_place(address)}"]
    keys += [f"target:{k}" for k in target_keys(target)]
    return keys


def is_hotspot(count_in_window: int, threshold: int) -> bool:
    """高频投诉: ``threshold`` complaints (this one included) within the window."""
    return count_in_window >= threshold


def window_start(received_at: dt.datetime, window_days: float) -> dt.datetime:
    return received_at - dt.timedelta(days=window_days)


def hotspot_id(district: str, matter: str, place_key: str) -> str:
    return f"{district}:{matter}:{place_key}"


PLACE_ACTIVITY_CAP = 1000
"""Most complaints a place's activity keeps (the newest); far above any hotspot threshold."""


class PlaceActivity(BaseModel):
    """Recent complaints of one matter at one place (地址/对象) in one district: what the 高频投诉
    rule counts, kept per place so a new complaint reads one document instead of querying
    every complaint of the place."""

    id: str
    recent: list[tuple[str, dt.datetime]] = []
    """(order id, received at) of the complaints within the window of the newest one."""
    leads: int = 0
    last_at: dt.datetime | None = None
    """When the last 高频投诉 lead of this place was raised (received time of its complaint)."""
    complaints: list[str] = []
    """The complaints the last lead named."""

    def record(self, order_id: str, received_at: dt.datetime, window_days: float) -> None:
        """Add a complaint (once) and forget those before the newest one's window."""
        if all(known != order_id for known, _ in self.recent):
            self.recent.append((order_id, received_at))
        newest = max(at for _, at in self.recent)
        since = window_start(newest, window_days)
        kept = sorted((e for e in self.recent if e[1] >= since), key=lambda e: (e[1], e[0]))
        self.recent = kept[-PLACE_ACTIVITY_CAP:]

    def within(self, since: dt.datetime, until: dt.datetime) -> list[str]:
        """Ids of the complaints received in [since, until]."""
        return sorted(order_id for order_id, at in self.recent if since <= at <= until)


def confirms_violation(
    verdict: str | None,
    outcome: str | None,
    keywords: Iterable[str],
    negations: Iterable[str] = (),
) -> bool:
    """A verdict says so; without one, the outcome's wording (e.g. 属实) does.

    Wording that contains a keyword but negates or qualifies it (不属实、部分属实、无法核实……
    是否属实、违法行为不成立) confirms nothing: those phrases are struck out first, and only a
    keyword left standing confirms the violation ("部分属实，其中占道经营问题属实" still does).
    """
    if verdict is not None:
        return verdict == "violation_confirmed"
    text = outcome or ""
    for phrase in sorted((n for n in negations if n), key=len, reverse=True):
        text = text.replace(phrase, "\u3000")
    return any(k and k in text for k in keywords)


def case_check_due(resolved_at: dt.datetime, days: int) -> dt.datetime:
    return resolved_at + dt.timedelta(days=days)


def is_case_not_opened(
    resolved_at: dt.datetime,
    now: dt.datetime,
    case_times: Sequence[dt.datetime],
    days: int,
) -> bool:
    """应立未立: ``days`` have passed since resolution and no case arrived by then.

    A case that arrived at any time up to the deadline counts (even one opened before the
    complaint: the unit was already on it).
    """
    deadline = case_check_due(resolved_at, days)
    if now < deadline:
        return False
    return not any(t <= deadline for t in case_times)
