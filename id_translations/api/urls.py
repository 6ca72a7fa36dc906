from django.urls import path

from .views import IdTranslationView

urlpatterns = [
    path("v1/communications/id-translations", IdTranslationView.as_view(), name="id-translations"),
]
