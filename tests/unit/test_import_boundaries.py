"""domain and ports import nothing but the standard library, attrs and themselves at run time."""

import subprocess
import sys

FORBIDDEN = ("adapters", "entrypoints", "sqlalchemy", "psycopg", "flask", "telebot", "rq", "redis", "cattrs",
             "dependency_injector", "requests")


def _loaded_after_import() -> set[str]:
    code = (
        "import sys, pkgutil, importlib\n"
        "import domain, ports\n"
        "for pkg in (domain, ports):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "print('\\n'.join(sorted({n.split('.')[0] for n in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(out.split())


def test_domain_and_ports_load_no_framework_or_outer_layer() -> None:
    loaded = _loaded_after_import()
    assert "domain" in loaded and "ports" in loaded
    assert loaded.isdisjoint(FORBIDDEN), loaded & set(FORBIDDEN)


def test_domain_alone_loads_nothing_of_the_project_outside_itself() -> None:
    code = (
        "import sys, pkgutil, importlib, domain\n"
        "for m in pkgutil.walk_packages(domain.__path__, 'domain.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('\\n'.join(sorted({n.split('.')[0] for n in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = set(out.split())
    assert "ports" not in loaded
    assert loaded.isdisjoint(FORBIDDEN)
