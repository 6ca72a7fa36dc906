from django.urls import path

from .views import CallPhoneView, CommunicationCallsView, TelephonyEventView

urlpatterns = [
    path("v2/communications/<str:uuid>/call-phone", CallPhoneView.as_view(), name="communication-call-phone"),
    path("v2/communications/<str:uuid>/calls", CommunicationCallsView.as_view(), name="communication-calls"),
    path("v2/telephony/events", TelephonyEventView.as_view(), name="telephony-events"),
]
