"""The web UI's login and logout: ``GET``/``POST /login`` and ``POST /logout`` (see :mod:`quayside.server.sessions`).

Both are plain HTML forms (``application/x-www-form-urlencoded``), so they work without
scripts; each carries its CSRF token as a hidden field and checks it here. A password is
checked by the identity store, which records the attempt and slows down repeated failures
for one user. Without ``--auth`` there is nothing to log into: ``/login`` sends the
browser to the experiments page.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from quayside.errors import AuthenticationError, PermissionDeniedError, UnsupportedMediaTypeError
from quayside.server.deps import get_state
from quayside.server.sessions import (
    CSRF_FIELD,
    check_form_csrf,
    check_login_form,
    current_session,
    end_session,
    new_login_form,
    remember_login_form,
    start_session,
)
from quayside.server.ui.templating import PageRoute, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_NAME_CHARS = 256
MAX_PASSWORD_CHARS = 1024


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this server, never another site (``//host``, ``/\\host``)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


async def _form(request: Request) -> dict[str, str]:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        raise UnsupportedMediaTypeError(f"this form is posted as {FORM_TYPE}")
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


def _auth_on(request: Request) -> bool:
    return bool(get_state(request).settings.auth)


def _login_page(request: Request, *, next_path: str, username: str = "", error: str = "", status: int = 200):
    nonce, token = new_login_form(request)
    response = render(
        request,
        "login.html",
        status_code=status,
        login_token=token,
        next_path=next_path,
        username=username,
        error=error,
        session_user=None,
        csrf_token=None,
    )
    remember_login_form(request, response, nonce)
    return response


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    next_path = safe_next(next)
    if not _auth_on(request) or current_session(request) is not None:
        return RedirectResponse(next_path, status_code=303)
    return _login_page(request, next_path=next_path)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    next_path = safe_next(form.get("next"))
    if not _auth_on(request):
        return RedirectResponse(next_path, status_code=303)
    username = form.get("username", "")[:MAX_NAME_CHARS].strip()
    if not check_login_form(request, form.get(CSRF_FIELD)):
        message = "the login form expired or came from another site; log in again"
        return _login_page(request, next_path=next_path, username=username, error=message, status=403)
    identities = get_state(request).identity
    try:
        identity = identities.authenticate_password(username, form.get("password", "")[:MAX_PASSWORD_CHARS])
    except AuthenticationError as e:
        return _login_page(request, next_path=next_path, username=username, error=e.message, status=401)
    response = RedirectResponse(next_path, status_code=303)
    start_session(request, response, identity.name)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await _form(request)
    if current_session(request) is not None and check_form_csrf(request, form.get(CSRF_FIELD)) is None:
        raise PermissionDeniedError(
            "the logout form carried no valid CSRF token; reload the page and try again"
        )
    response = RedirectResponse("/login" if _auth_on(request) else "/", status_code=303)
    end_session(request, response)
    return response
