"""Order deadline thresholds and KEFU_SHOP_OVERRIDES: a core vocabulary, read by the settings
validator (which refuses a bad value at start-up), the reminders rules and the handover book.

No feature imports here, so `bot.settings` can validate without pulling in a feature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC
from typing import Any

#: Longest threshold accepted in settings (30 days).
MAX_HOURS = 720.0


@dataclass(frozen=True)
class Thresholds:
    """Hours after creation (unpaid) or payment (warn, unshipped) at which each stage falls due."""

    unpaid: float = 12.0
    warn: float = 36.0
    unshipped: float = 48.0

    def seconds(self, key: str) -> int:
        return round(getattr(self, key) * 3600)


# --- KEFU_SHOP_OVERRIDES -----------------------------------------------------------------------

OVERRIDE_KEYS = ("unpaid", "warn", "unshipped")


class ShopOverrideError(ValueError):
    """A bad KEFU_SHOP_OVERRIDES (or threshold) value; `code` names the label that explains it."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(f"{code}: {params}")
        self.code = code
        self.params = params

    def message(self) -> str:
        """The Chinese explanation from templates/reminders/settings_error.txt (the code if unavailable)."""
        try:
            from bot.render import renderer_for

            return renderer_for(UTC).render("reminders/settings_error.txt", code=self.code, **self.params)
        except Exception:  # noqa: BLE001 — a broken template must not hide the setting's own problem
            return str(self)


_FULL_WIDTH = str.maketrans({"：": ":", "，": ",", "；": ";", "＝": "=", "　": " "})


def parse_shop_overrides(text: str, defaults: Thresholds = Thresholds()) -> dict[str, Thresholds]:
    """`店铺A:unpaid=6,warn=18,unshipped=24;店铺B:unpaid=8` → full thresholds per shop.

    Keys not given keep the defaults. Refused, with the part that is wrong: a part without `:`,
    an empty shop name, a shop named twice, an unknown key, a value that is not a number of hours
    in (0, 720], and a warning that is not earlier than the breach.
    """
    result: dict[str, Thresholds] = {}
    parts = [p.strip() for p in (text or "").translate(_FULL_WIDTH).split(";")]
    for index, part in enumerate(parts, 1):
        if not part:
            continue
        shop, sep, spec = part.rpartition(":")
        shop = shop.strip()
        if not sep:
            raise ShopOverrideError("no_colon", part=part, index=index)
        if not shop:
            raise ShopOverrideError("no_shop", part=part, index=index)
        if shop in result:
            raise ShopOverrideError("duplicate_shop", shop=shop)
        values: dict[str, float] = {}
        for item in (i.strip() for i in spec.split(",")):
            if not item:
                continue
            key, eq, raw = (s.strip() for s in item.partition("="))
            if not eq or key.lower() not in OVERRIDE_KEYS:
                raise ShopOverrideError("bad_key", shop=shop, item=item, keys=", ".join(OVERRIDE_KEYS))
            values[key.lower()] = _hours(raw, shop=shop, key=key.lower())
        if not values:
            raise ShopOverrideError("no_values", shop=shop, keys=", ".join(OVERRIDE_KEYS))
        merged = Thresholds(**{k: values.get(k, getattr(defaults, k)) for k in OVERRIDE_KEYS})
        if merged.warn >= merged.unshipped:
            raise ShopOverrideError("warn_not_before_breach", shop=shop, warn=merged.warn, unshipped=merged.unshipped)
        result[shop] = merged
    return result


def _hours(raw: str, **where: Any) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ShopOverrideError("bad_hours", value=raw, **where) from None
    if not math.isfinite(value) or value <= 0 or value > MAX_HOURS:
        raise ShopOverrideError("bad_hours", value=raw, **where)
    return value
