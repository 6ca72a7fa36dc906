"""The domain never imports the API (the style guide: "inside an app, the domain never imports its
own `api/` or `admin`"): checked on the source, so a new import anywhere below the API fails here.

The apps are the project's packages laid out with an `api/` package (communications, dicts,
id_translations, telephony). An app's domain is every module of it outside `api/`, its admin and
its tests (models, services, selectors, the transfer package, commands, migrations, ...). None of
them may import an `api` module (any app's `api/` package, or the floor's
`communications_project.api`) nor an app's admin, directly or inside a function. The project
package itself is the floor: its `api.py`, `filters.py` and `schema.py` are the API's own floor.
"""

import ast
from pathlib import Path

from django.apps import apps
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def local_packages() -> dict[str, Path]:
    """The project's own installed packages (name -> folder), the project package included."""
    return {
        config.name: Path(config.path)
        for config in apps.get_app_configs()
        if Path(config.path).resolve().is_relative_to(ROOT.resolve())
    }


def layered_apps(packages: dict[str, Path]) -> dict[str, Path]:
    """The apps whose domain is checked: those with an `api/` package."""
    return {name: folder for name, folder in packages.items() if (folder / "api" / "__init__.py").is_file()}


def is_domain(module: str, app: str) -> bool:
    parts = module[len(app) :].lstrip(".").split(".")
    return parts[0] not in ("api", "admin", "tests") and not parts[0].startswith("test")


def is_forbidden(target: str, packages: set[str]) -> bool:
    """An API or admin module of one of our packages: `communications.api.serializers`,
    `communications_project.api`, `telephony.admin`, ..."""
    top, _, rest = target.partition(".")
    if top not in packages or not rest:
        return False
    return rest.split(".")[0] in ("api", "admin")


def imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, dotted name) of every module an import statement names, relative ones resolved;
    `from x import y` counts as importing `x` and `x.y` (y may be a module)."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            if node.level:
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def violations(packages: dict[str, Path]) -> list[str]:
    names = set(packages)
    problems = []
    for app, folder in layered_apps(packages).items():
        for path in sorted(folder.rglob("*.py")):
            relative = path.relative_to(folder).with_suffix("")
            is_package = relative.name == "__init__"
            parts = relative.parts[:-1] if is_package else relative.parts
            module = ".".join((app, *parts))
            if not is_domain(module, app):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for line, target in imported(tree, module, is_package):
                if is_forbidden(target, names):
                    problems.append(f"{path.relative_to(folder.parent)}:{line} imports {target}")
    return sorted(set(problems))


def test_no_domain_module_imports_an_api_or_admin_module():
    packages = local_packages()
    assert set(layered_apps(packages)) == {"communications", "dicts", "id_translations", "telephony"}
    assert violations(packages) == []


def test_the_check_finds_an_api_import_in_a_domain_module(tmp_path):
    """The check itself: a package laid out as an app, with every kind of import it must catch
    in domain modules, and the same imports where they are allowed."""
    app = tmp_path / "shop"
    for folder in ("api", "transfer", "tests", "management/commands"):
        (app / folder).mkdir(parents=True)
        (app / folder / "__init__.py").write_text("")
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text("from .api.serializers import TEXT_MAX\n")
    (app / "services.py").write_text("def later():\n    from shop import api\n")
    (app / "transfer" / "rules.py").write_text("from ..api import views\nimport other.api.urls\n")
    (app / "management" / "commands" / "go.py").write_text("from shop.admin import Screen\n")
    (app / "selectors.py").write_text("from other.models import Thing\nfrom shop.apis import x\n")  # allowed
    (app / "api" / "views.py").write_text("from ..admin import Screen\nfrom other.api import y\n")  # the API may
    (app / "admin.py").write_text("from .api.serializers import TEXT_MAX\n")  # so may the admin
    (app / "tests" / "test_x.py").write_text("from shop.api import views\n")  # and the tests
    (app / "transfer" / "loader.py").write_text("from floor.api import StrictSerializer\nfrom floor import db\n")
    other = tmp_path / "other"
    (other / "api").mkdir(parents=True)
    (other / "__init__.py").write_text("")
    (other / "api" / "__init__.py").write_text("")
    (other / "models.py").write_text("from .api import z\n")
    floor = tmp_path / "floor"  # no api/ package: the floor, not checked; its api module is an API
    floor.mkdir()
    (floor / "__init__.py").write_text("")
    (floor / "filters.py").write_text("from .api import UUID_RE\n")
    assert violations({"shop": app, "other": other, "floor": floor}) == [
        "other/models.py:1 imports other.api",
        "other/models.py:1 imports other.api.z",
        "shop/management/commands/go.py:1 imports shop.admin",
        "shop/management/commands/go.py:1 imports shop.admin.Screen",
        "shop/models.py:1 imports shop.api.serializers",
        "shop/models.py:1 imports shop.api.serializers.TEXT_MAX",
        "shop/services.py:2 imports shop.api",
        "shop/transfer/loader.py:1 imports floor.api",
        "shop/transfer/loader.py:1 imports floor.api.StrictSerializer",
        "shop/transfer/rules.py:1 imports shop.api",
        "shop/transfer/rules.py:1 imports shop.api.views",
        "shop/transfer/rules.py:2 imports other.api.urls",
    ]
