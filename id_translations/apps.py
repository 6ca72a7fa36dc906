from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IdTranslationsConfig(AppConfig):
    name = "id_translations"
    verbose_name = _("ID translations")
