"""A curl_cffi session answering yfinance's requests from recorded Yahoo responses."""

from __future__ import annotations

import threading

from curl_cffi import requests
from curl_cffi.requests.models import Response

from tests.ccxt_http import fixture


class RecordedYahooSession(requests.Session):
    """Routes by URL fragment; ``/v1/test/getcrumb`` gets a crumb, unknown URLs Yahoo's
    recorded 404 for a ticker it does not know.

    A route whose value is an exception raises it; ``hang`` blocks until released.
    """

    def __init__(self, routes: dict[str, str | int | BaseException]) -> None:
        super().__init__()
        self.routes = routes
        self.requests: list[str] = []
        self.release = threading.Event()

    def request(self, method: str, url: str, *args: object, **kwargs: object) -> Response:
        self.requests.append(url)
        response = Response()
        response.url = url
        if "getcrumb" in url:
            response.content = b"recordedCrumb"
            return response
        if "fc.yahoo.com" in url:
            response.status_code = 404
            return response
        for fragment, answer in self.routes.items():
            if fragment in url:
                if answer == "hang":
                    self.release.wait()
                    answer = 404
                if isinstance(answer, BaseException):
                    raise answer
                if isinstance(answer, int):
                    response.status_code, response.ok = answer, False
                else:
                    response.content = fixture(answer).encode()
                return response
        response.status_code, response.ok = 404, False
        response.content = fixture("yahoo/chart_not_found.json").encode()
        return response


# The recorded chart answers of the tests, by request path.
CHARTS = {
    "/v8/finance/chart/AAPL": "yahoo/chart_aapl.json",
    "/v8/finance/chart/EURUSD=X": "yahoo/chart_eurusd.json",
}
