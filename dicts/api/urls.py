from django.urls import path

from .views import CommunicationMethodListView

urlpatterns = [
    path(
        "v2/dicts/communications-methods",
        CommunicationMethodListView.as_view(),
        name="communication-methods",
    ),
]
