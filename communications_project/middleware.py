from django.utils import translation


class APILanguageMiddleware:
    """The API's error details are English whatever the browser asks for; the admin stays Russian.

    Error codes are the contract and details are for developers; mixing DRF's translated messages
    with the service's English ones would be worse than either. Russian labels the CRM shows
    (statuses, methods) are chosen explicitly where they are served.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/admin/"):
            return self.get_response(request)
        with translation.override("en"):
            return self.get_response(request)
