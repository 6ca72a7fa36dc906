from django.urls import path

from .views import CommunicationStatusListView, CommunicationViewSet

# URLs exactly as SPEC §6 writes them: no trailing slash, the version in each path.
detail = CommunicationViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"})
UUID = "v2/communications/<str:uuid>"

urlpatterns = [
    path("v2/communications", CommunicationViewSet.as_view({"post": "create"}), {"version": "v2"}, name="communication-create"),
    path("v3/communications", CommunicationViewSet.as_view({"get": "list"}), {"version": "v3"}, name="communication-list"),
    path(
        "v3/collections/communications",
        CommunicationViewSet.as_view({"post": "collection"}),
        {"version": "v3"},
        name="communication-collection",
    ),
    path(UUID, detail, {"version": "v2"}, name="communication-detail"),
    path(f"{UUID}/primary-info", CommunicationViewSet.as_view({"get": "primary_info"}), {"version": "v2"}, name="communication-primary-info"),
    path(f"{UUID}/history", CommunicationViewSet.as_view({"get": "history"}), {"version": "v2"}, name="communication-history"),
    path(f"{UUID}/start", CommunicationViewSet.as_view({"patch": "start"}), {"version": "v2"}, name="communication-start"),
    path(f"{UUID}/close", CommunicationViewSet.as_view({"patch": "close"}), {"version": "v2"}, name="communication-close"),
    path(f"{UUID}/failed", CommunicationViewSet.as_view({"patch": "failed"}), {"version": "v2"}, name="communication-failed"),
    path(f"{UUID}/cancel", CommunicationViewSet.as_view({"post": "cancel"}), {"version": "v2"}, name="communication-cancel"),
    path("v2/dicts/communications-statuses", CommunicationStatusListView.as_view(), {"version": "v2"}, name="communication-statuses"),
]
