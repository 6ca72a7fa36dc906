from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CommunicationsConfig(AppConfig):
    name = "communications"
    verbose_name = _("Communications")

    def ready(self) -> None:
        from communications_project.metrics import register_scrape_collector

        from .relay import RelayCollector

        register_scrape_collector(RelayCollector())
