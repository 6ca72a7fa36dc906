from django.db import models
from django.utils.translation import gettext_lazy as _


class CommunicationMethod(models.Model):
    """One way of reaching a client (call, visit, ...). The code is the key and never changes."""

    code = models.SlugField(_("code"), max_length=32, primary_key=True)
    name = models.CharField(_("name"), max_length=100)
    is_active = models.BooleanField(_("active"), default=True)
    sort_order = models.PositiveSmallIntegerField(_("sort order"), default=0)

    class Meta:
        ordering = ["sort_order", "code"]
        verbose_name = _("communication method")
        verbose_name_plural = _("communication methods")

    def __str__(self) -> str:
        return self.name
