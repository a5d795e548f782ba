"""Shared test fixtures: a recorded-response HTTP server on 127.0.0.1 that speaks the providers' wire format."""
import json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def two_tasks(tmp_path, names=("wine", "diabetes")) -> Path:
    "A folder with fixture tasks (hand-written fixtures: wine, classification; diabetes, regression), copied once per tmp_path."
    import shutil
    d = tmp_path / "tasks"
    if not d.exists():
        for t in names: shutil.copytree(FIXTURES / "tasks" / t, d / t)
    return d


class RecordedServer:
    "Serves recorded responses in order (the last one repeats) and keeps every request it received."
    def __init__(self):
        self.responses, self.requests = [], []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                server.requests.append(dict(path=self.path, headers={k.lower(): v for k, v in self.headers.items()}, body=json.loads(body or b"{}")))
                r = server.responses[min(len(server.requests), len(server.responses)) - 1]
                payload = r["raw"].encode() if "raw" in r else json.dumps(r["body"]).encode()
                self.send_response(r["status"])
                for k, v in r.get("headers", {}).items(): self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *a): pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def serve(self, *names):
        "Queue the recorded responses `names` (files in tests/fixtures/llm/)."
        self.responses = [json.loads((FIXTURES / "llm" / f"{n}.json").read_text()) for n in names]
        self.requests = []
        return self


@pytest.fixture
def recorded():
    s = RecordedServer()
    yield s
    s.httpd.shutdown()
