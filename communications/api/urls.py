from django.urls import path

from .reports import LeadResponseView
from .views import CommunicationEventListView, CommunicationStatusListView, CommunicationViewSet

# URLs exactly as SPEC §6 writes them: no trailing slash, the version in each path. The versions
# do not differ yet; when one does, that view switches on the path it was reached by.


def action_view(method: str, name: str, **more: str):
    """The view of one @action (and of `more` method: action pairs on the same URL), with the
    options the first's decorator gave it (as a router would)."""
    return CommunicationViewSet.as_view({method: name, **more}, **getattr(CommunicationViewSet, name).kwargs)


detail = CommunicationViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"})
UUID = "v2/communications/<str:uuid>"

urlpatterns = [
    path("v2/communications", CommunicationViewSet.as_view({"post": "create"}), name="communication-create"),
    path("v3/communications", CommunicationViewSet.as_view({"get": "list"}), name="communication-list"),
    path("v3/communications/events", CommunicationEventListView.as_view(), name="communication-events"),
    path(
        "v3/collections/communications",
        action_view("post", "collection"),
        name="communication-collection",
    ),
    path(UUID, detail, name="communication-detail"),
    path(f"{UUID}/primary-info", action_view("get", "primary_info"), name="communication-primary-info"),
    path(f"{UUID}/history", action_view("get", "history"), name="communication-history"),
    path(f"{UUID}/attempts", action_view("get", "attempts", post="record_attempt"), name="communication-attempts"),
    path(f"{UUID}/start", action_view("patch", "start"), name="communication-start"),
    path(f"{UUID}/close", action_view("patch", "close"), name="communication-close"),
    path(f"{UUID}/failed", action_view("patch", "failed"), name="communication-failed"),
    path(f"{UUID}/cancel", action_view("post", "cancel"), name="communication-cancel"),
    path("v2/dicts/communications-statuses", CommunicationStatusListView.as_view(), name="communication-statuses"),
    path("v3/reports/lead-response", LeadResponseView.as_view(), name="report-lead-response"),
]
