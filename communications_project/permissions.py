from rest_framework.permissions import DjangoModelPermissions

VIEW = "%(app_label)s.view_%(model_name)s"
ADD = "%(app_label)s.add_%(model_name)s"
CHANGE = "%(app_label)s.change_%(model_name)s"
DELETE = "%(app_label)s.delete_%(model_name)s"


class ModelPermissions(DjangoModelPermissions):
    """Django's model permissions, reads included (GET needs `view_<model>`).

    A view may name the permission of each action in `action_permissions`, where the HTTP method
    alone says too little: a POST that cancels is a change, a POST that reads a collection a view.
    """

    perms_map = {**DjangoModelPermissions.perms_map, "GET": [VIEW], "HEAD": [VIEW]}

    def has_permission(self, request, view):
        action_permissions = getattr(view, "action_permissions", None)
        action = getattr(view, "action", None)
        if action_permissions is None or action not in action_permissions:
            return super().has_permission(request, view)
        if not request.user or not request.user.is_authenticated:
            return False
        # The class's queryset names the model; get_queryset() would build a query only to be asked that.
        queryset = getattr(view, "queryset", None)
        opts = (queryset if queryset is not None else self._queryset(view)).model._meta
        perm = action_permissions[action] % {"app_label": opts.app_label, "model_name": opts.model_name}
        return request.user.has_perm(perm)
