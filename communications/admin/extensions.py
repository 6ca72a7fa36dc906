"""The extension point: what a higher app (telephony) adds to the communication's screens.

It registers a `CommunicationAdminExtension` from its own admin module; `communications` never
imports it.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.contrib import admin
from django.http import HttpRequest
from django.urls import URLPattern

from ..models import Communication

if TYPE_CHECKING:
    from . import CommunicationAdmin


class CommunicationAdminExtension:
    """A higher app's part of the communication's admin: inlines, a panel at the top of the
    change page (its buttons), and the URLs those buttons post to."""

    inlines: Sequence[type[admin.options.InlineModelAdmin]] = ()

    def get_urls(self, model_admin: "CommunicationAdmin") -> list[URLPattern]:
        return []

    def panel(self, request: HttpRequest, communication: Communication) -> str:
        """HTML shown beside the transition buttons; "" for nothing."""
        return ""


extensions: list[CommunicationAdminExtension] = []


def register_extension(extension: CommunicationAdminExtension) -> CommunicationAdminExtension:
    extensions.append(extension)
    return extension
