"""Typed errors of the promotion engine; `str()` is one line a person can act on."""

from __future__ import annotations

from liteshift.errors import LiteshiftError


class PromotionError(LiteshiftError):
    """Base class of every error the promotion engine raises on purpose."""

    code = "promotion_error"


class BadPromotionSetting(PromotionError):
    """A promotion setting (window, cooldown, threshold, policy) that cannot be used."""

    code = "bad_promotion_setting"

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid {field}: {reason}")


class MetricsUnavailable(PromotionError):
    """Prometheus cannot answer: unreachable, an error, or no data for a query."""

    code = "metrics_unavailable"

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(detail)
