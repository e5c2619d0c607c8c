"""Sign-in, sessions, roles, CSRF and headers of the console (SPEC 13/14)."""

from __future__ import annotations

from flask import Flask

from tests.unit.console.conftest import ADMIN, PASSWORD, VIEWER, csrf_token, signed_in


def test_pages_redirect_to_sign_in_without_a_session(console_app: Flask) -> None:
    response = console_app.test_client().get("/ops/audit")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/ops/sign-in?next=/ops/audit")


def test_admin_signs_in_and_lands_on_the_overview(console_app: Flask) -> None:
    client = console_app.test_client()
    signed_in(client, ADMIN)
    page = client.get("/ops/")
    assert page.status_code == 200
    assert "Overview" in page.text and ADMIN in page.text


def test_session_cookie_is_http_only_strict_and_scoped_to_the_console(console_app: Flask) -> None:
    client = console_app.test_client()
    token = csrf_token(client.get("/ops/sign-in").text)
    response = client.post("/ops/sign-in", data={"name": ADMIN, "password": PASSWORD, "csrf_token": token})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ops" in cookie
    assert "Secure" not in cookie  # plain HTTP here; HTTPS requests get Secure


def test_cookie_is_secure_over_https(console_app: Flask) -> None:
    client = console_app.test_client()
    base = "https://localhost"
    token = csrf_token(client.get("/ops/sign-in", base_url=base).text)
    response = client.post("/ops/sign-in", base_url=base,
                           data={"name": ADMIN, "password": PASSWORD, "csrf_token": token})
    assert "Secure" in response.headers["Set-Cookie"]


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(console_app: Flask) -> None:
    client = console_app.test_client()
    token = csrf_token(client.get("/ops/sign-in").text)
    response = client.post("/ops/sign-in", data={"name": ADMIN, "password": "nope-nope-nope", "csrf_token": token})
    assert response.status_code == 401
    assert "Wrong operator name or password" in response.text


def test_sign_in_is_throttled_after_repeated_failures(console_app: Flask) -> None:
    client = console_app.test_client()
    token = csrf_token(client.get("/ops/sign-in").text)
    statuses = [client.post("/ops/sign-in", data={"name": ADMIN, "password": f"wrong-{i}-password",
                                                  "csrf_token": token}).status_code for i in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
    # Even the right password is refused while throttled.
    right = client.post("/ops/sign-in", data={"name": ADMIN, "password": PASSWORD, "csrf_token": token})
    assert right.status_code == 429 and "Too many failed sign-ins" in right.text


def test_post_without_csrf_token_is_refused(console_app: Flask) -> None:
    client = console_app.test_client()
    signed_in(client, ADMIN)
    response = client.post("/ops/sign-out")
    assert response.status_code == 400
    assert "security token" in response.text


def test_sign_in_form_without_csrf_token_is_refused(console_app: Flask) -> None:
    response = console_app.test_client().post("/ops/sign-in", data={"name": ADMIN, "password": PASSWORD})
    assert response.status_code == 400


def test_cross_origin_post_is_refused(console_app: Flask) -> None:
    client = console_app.test_client()
    token = signed_in(client, ADMIN)
    response = client.post("/ops/sign-out", data={"csrf_token": token}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403


def test_viewer_cannot_post_changes_even_with_a_valid_token(console_app: Flask) -> None:
    client = console_app.test_client()
    token = signed_in(client, VIEWER)
    response = client.post("/ops/campaigns/new", data={"csrf_token": token, "name": "x"})
    assert response.status_code == 403


def test_viewer_may_sign_out(console_app: Flask) -> None:
    client = console_app.test_client()
    token = signed_in(client, VIEWER)
    assert client.post("/ops/sign-out", data={"csrf_token": token}).status_code == 302
    assert client.get("/ops/").status_code == 302


def test_new_password_ends_existing_sessions(console_app: Flask) -> None:
    client = console_app.test_client()
    signed_in(client, ADMIN)
    container = console_app.extensions["starpromo.container"]
    container.operator_service().set_password(ADMIN, "another long password", actor="cli:test")
    assert client.get("/ops/").status_code == 302


def test_pages_carry_a_strict_content_security_policy(console_app: Flask) -> None:
    client = console_app.test_client()
    for path in ("/ops/sign-in", "/ops/static/console.css"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert headers["X-Frame-Options"] == "DENY"
    assert client.get("/ops/sign-in").headers["Cache-Control"] == "no-store"


def test_address_outside_the_allowlist_is_refused(console_app: Flask) -> None:
    client = console_app.test_client()
    response = client.get("/ops/sign-in", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 403


def test_next_never_leaves_the_console(console_app: Flask) -> None:
    client = console_app.test_client()
    token = csrf_token(client.get("/ops/sign-in").text)
    response = client.post("/ops/sign-in", data={"name": ADMIN, "password": PASSWORD, "csrf_token": token,
                                                 "next": "//evil.example/x"})
    assert response.headers["Location"] == "/ops/"


def test_console_is_not_served_without_a_session_secret() -> None:
    from entrypoints.container import build_container
    from entrypoints.http import create_app
    from tests.unit.console.conftest import console_settings

    settings = console_settings(OPS_SESSION_SECRET="")
    app = create_app(build_container(settings))
    assert app.test_client().get("/ops/sign-in").status_code == 404


def test_an_unexpected_failure_shows_a_plain_page_and_no_trace(console_app: Flask) -> None:
    client = console_app.test_client()
    signed_in(client, ADMIN)
    container = console_app.extensions["starpromo.container"]

    class Broken:
        def metrics(self, window_hours: int) -> None:
            raise RuntimeError("secret internals")

    from dependency_injector import providers

    container.dashboard_service.override(providers.Object(Broken()))
    page = client.get("/ops/")
    assert page.status_code == 500
    assert "Something went wrong" in page.text
    assert "secret internals" not in page.text and "Traceback" not in page.text
    assert page.headers["Content-Type"].startswith("text/html")
