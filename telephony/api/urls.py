from django.urls import path

from .views import CallPhoneView, TelephonyEventView

urlpatterns = [
    path("v2/communications/<str:uuid>/call-phone", CallPhoneView.as_view(), name="communication-call-phone"),
    path("v2/telephony/events", TelephonyEventView.as_view(), name="telephony-events"),
]
