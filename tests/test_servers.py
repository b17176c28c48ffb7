import httpx
import pytest

from tests.conftest import PASSWORD
from tests.servers import login_cookies

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_login_page_is_served_and_login_works(start_server, user, kind) -> None:
    server = start_server(kind)
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/accounts/login/")
        assert page.status_code == 200
        assert "Content-Security-Policy" in page.headers
        assert client.get("/").status_code == 302  # login required everywhere
    cookies = login_cookies(server.url, "alice", PASSWORD)
    with httpx.Client(base_url=server.url, cookies=cookies) as client:
        assert client.get("/").status_code == 200
