"""BioModels fetch against a real HTTP server on 127.0.0.1 (no mocks)."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from typer.testing import CliRunner

from pe_bench.cli import app

SBML = (
    Path(__file__).resolve().parents[1] / "pe_bench/problems/builtin/cortisol/model_cortisol.xml"
).read_bytes()
MODEL_ID = "BIOMD0000000916"
runner = CliRunner()


class _Handler(BaseHTTPRequestHandler):
    files = {
        MODEL_ID: ("BIOMD0000000916_url.xml", SBML),
        "BIOMD0000000001": ("broken.xml", b"<html>no</html>"),
    }
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        url = urlparse(self.path)
        self.requests.append(url.path)
        parts = url.path.strip("/").split("/")
        if parts[:2] == ["model", "files"] and parts[2] in self.files:
            body = json.dumps({"main": [{"name": self.files[parts[2]][0]}], "additional": []}).encode()
            return self._send(200, body, "application/json")
        if parts[:2] == ["model", "download"] and parts[2] in self.files:
            name, data = self.files[parts[2]]
            if parse_qs(url.query).get("filename") == [name]:
                return self._send(200, data, "application/xml")
        return self._send(404, b"not found", "text/plain")

    def _send(self, code, body, ctype):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_then_use_as_problem(server, tmp_path):
    result = runner.invoke(app, ["fetch", MODEL_ID, "--base-url", server])
    assert result.exit_code == 0, result.output
    cached = tmp_path / "cache" / "biomodels" / f"{MODEL_ID}.xml"
    assert cached.read_bytes() == SBML
    info = runner.invoke(app, ["info", MODEL_ID, "--json"])
    assert info.exit_code == 0, info.output
    assert json.loads(info.stdout)["species"] == 5
    out = tmp_path / "sim.csv"
    sim = runner.invoke(app, ["simulate", MODEL_ID, "--out", str(out)])
    assert sim.exit_code == 0, sim.output
    assert out.is_file()


def test_base_url_from_environment(server, monkeypatch, tmp_path):
    monkeypatch.setenv("PE_BENCH_BIOMODELS_URL", server)
    assert runner.invoke(app, ["fetch", MODEL_ID]).exit_code == 0
    assert (tmp_path / "cache" / "biomodels" / f"{MODEL_ID}.xml").is_file()


def test_not_fetched_yet_says_so():
    result = runner.invoke(app, ["info", MODEL_ID])
    assert result.exit_code == 2
    assert f"pebench fetch {MODEL_ID}" in result.stderr


def test_offline_is_one_clear_error(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = runner.invoke(app, ["fetch", MODEL_ID, "--base-url", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 2
    assert "cannot reach BioModels" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "cache" / "biomodels").exists()


def test_unknown_entry_and_non_sbml(server, tmp_path):
    missing = runner.invoke(app, ["fetch", "BIOMD0000000002", "--base-url", server])
    assert missing.exit_code == 2 and "HTTP 404" in missing.stderr
    broken = runner.invoke(app, ["fetch", "BIOMD0000000001", "--base-url", server])
    assert broken.exit_code == 2 and "not valid SBML" in broken.stderr
    assert not list((tmp_path / "cache").rglob("*.xml"))


def test_bad_id():
    result = runner.invoke(app, ["fetch", "cortisol"])
    assert result.exit_code == 2 and "not a BioModels id" in result.stderr
