from django.urls import include, path

from . import bare

urlpatterns = [
    path("bare/communications/<uuid:uuid>", bare.get_one),
    path("bare/communications", bare.list_page),
    path("bare/collections/communications", bare.collection),
    path("bare/dicts/communications-methods", bare.methods),
    path("", include("communications_project.urls")),
]
