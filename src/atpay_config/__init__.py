"""atpay-config: configuration-as-code and policy checks for Autotask PSA Payment Processing."""

from __future__ import annotations

__version__ = "0.1.0"
